/**
 * The fork's DSN-driven Kerberos selection (spec fork.md §2): which mode, which keytab or
 * credential cache, which service name, and the DSN the driver sees once kine's own parameters
 * are gone.
 *
 * @module
 */
import { AuthConfigError } from "./identity.ts";

/** How kine obtains Kerberos credentials for PostgreSQL logins. */
export interface KerberosSettings {
  /** `keytab`: kine gets and renews tickets itself; `ccache`: tickets someone else keeps fresh. */
  mode: "keytab" | "ccache";
  /** Keytab path (keytab mode). */
  keytab: string;
  /** Credential cache name (ccache mode); empty = `KRB5CCNAME`, else MIT's default cache. */
  ccache: string;
  /** Service name of the server's principal (`krbsrvname`, default `postgres`). */
  service: string;
  /** The client principal as the DSN gives it: `user` or `user@REALM`. */
  principal: string;
}

/** The DSN for the driver and, when the DSN asks for it, the Kerberos settings. */
export interface KerberosDsn {
  /** The DSN without `krb5_keytab`, `krb5_ccache` and `krbsrvname`, its user the bare role. */
  dsn: string;
  kerberos?: KerberosSettings;
}

const PARAMS = ["krb5_keytab", "krb5_ccache", "krbsrvname"];

/**
 * Applies the selection rules to a PostgreSQL DSN (the part after `postgres://`): both
 * `krb5_keytab` and `krb5_ccache` is an error; `krb5_ccache` (even empty) selects the credential
 * cache; a non-empty `krb5_keytab` selects that keytab; else `KRB5_KTNAME` (an optional `FILE:`
 * prefix removed) selects its keytab; else Kerberos is off and the DSN only loses the parameters
 * (`KRB5CCNAME` alone does not switch GSSAPI on). With Kerberos on, a `user%40REALM` user
 * reaches the server as `user`. A DSN that is no URL is returned as is for the driver to
 * report.
 */
export function takeKerberosParams(
  dsn: string,
  env: (name: string) => string | undefined,
): KerberosDsn {
  let url: URL;
  try {
    url = new URL(`${SCHEME}${dsn}`);
  } catch {
    return { dsn };
  }
  const q = url.searchParams;
  const keytabParam = q.get("krb5_keytab") ?? "";
  const hasCcache = q.has("krb5_ccache");
  const ccache = q.get("krb5_ccache") ?? "";
  const service = q.get("krbsrvname") || "postgres";
  const touched = PARAMS.some((p) => q.has(p));
  for (const p of PARAMS) q.delete(p);
  const stripped = touched ? unscheme(url) : dsn;

  if (hasCcache && keytabParam !== "") {
    throw new AuthConfigError(
      "krb5_keytab and krb5_ccache are mutually exclusive: set one of them in the DSN",
    );
  }
  let mode: KerberosSettings["mode"];
  let keytab = "";
  if (hasCcache) {
    mode = "ccache";
  } else if (keytabParam !== "") {
    mode = "keytab";
    keytab = keytabParam;
  } else {
    const ktname = env("KRB5_KTNAME") ?? "";
    if (ktname === "") return { dsn: stripped };
    mode = "keytab";
    keytab = ktname.replace(/^FILE:/, "");
  }
  // The driver's default user, when the DSN names none, is postgres.
  const principal = decodeURIComponent(url.username) || "postgres";
  const at = principal.indexOf("@");
  if (at >= 0) url.username = encodeURIComponent(principal.slice(0, at));
  return { dsn: unscheme(url), kerberos: { mode, keytab, ccache, service, principal } };
}

const SCHEME = "postgres://";
const unscheme = (url: URL) => url.toString().slice(SCHEME.length);
