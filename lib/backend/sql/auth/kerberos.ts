/**
 * Kerberos credentials for PostgreSQL logins through the system GSSAPI library (`npm:kerberos`,
 * a native addon over MIT krb5). The addon is imported on first use only, so a daemon that does
 * not use Kerberos starts on a machine without libkrb5 or without the built addon.
 *
 * @module
 */
import { resolve } from "node:path";
import { AuthConfigError } from "./identity.ts";
import type { KerberosSettings } from "./kerberos_dsn.ts";
import { keytabPrincipals } from "./keytab.ts";
import { defaultRealm } from "./krb5_conf.ts";

/** A login that failed in GSSAPI (no ticket, unknown service principal, KDC unreachable, …). */
export class KerberosAuthError extends Error {
  override name = "KerberosAuthError";
}

/** One GSSAPI security context: feed it the server's tokens, send back what it returns. */
export interface GssContext {
  /** Takes the server's token (base64, empty at first) and returns the next one to send. */
  step(challenge: string): Promise<string>;
}

/** Starts a security context with the service on `host`, for one connection. */
export type GssInitiator = (host: string) => Promise<GssContext>;

type Env = (name: string) => string | undefined;

interface KerberosModule {
  initializeClient(service: string, options: { principal?: string; mechOID?: number }): Promise<
    GssContext
  >;
  GSS_MECH_OID_KRB5: number;
}

let addon: Promise<KerberosModule> | undefined;

/** Imports `npm:kerberos` once; a failure says what to build or install. */
function loadAddon(): Promise<KerberosModule> {
  addon ??= import("kerberos").then(
    (m) => (m.default ?? m) as unknown as KerberosModule,
    (err) => {
      addon = undefined;
      const msg = (err as Error).message.split("\n")[0];
      throw new AuthConfigError(
        /kerberos\.node/.test(msg) && /Cannot find module/.test(msg)
          ? "kerberos: the GSSAPI addon npm:kerberos is not built: run `deno task kerberos-addon`"
          : `kerberos: cannot load the GSSAPI addon npm:kerberos (${msg}); ` +
            "it needs MIT krb5's GSSAPI library (Debian: libgssapi-krb5-2)",
      );
    },
  );
  return addon;
}

/**
 * Checks the settings and prepares the process for GSSAPI, at start-up: loads the addon; in
 * keytab mode reads the keytab (an unreadable one is an error naming the path) and requires the
 * client principal in it, then points MIT's client keytab (`KRB5_CLIENT_KTNAME`) at it with a
 * private in-memory credential cache, so libkrb5 gets tickets from the keytab and gets new ones
 * before they expire, reading the keytab again each time (a rotated key is picked up without a
 * restart). In credential-cache mode it only selects the cache.
 *
 * @param setEnv sets a process environment variable (MIT reads its settings from there)
 */
export async function prepareKerberos(
  k: KerberosSettings,
  env: Env,
  setEnv: (name: string, value: string) => void,
): Promise<GssInitiator> {
  const lib = await loadAddon();
  let principal: string | undefined;
  if (k.mode === "keytab") {
    principal = k.principal.includes("@") ? k.principal : await withDefaultRealm(k.principal, env);
    const path = resolve(k.keytab);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (err) {
      throw new AuthConfigError(
        `kerberos: cannot read keytab ${path}: ${(err as Error).message.split(":")[0]}`,
      );
    }
    let names: string[];
    try {
      names = keytabPrincipals(bytes);
    } catch (err) {
      throw new AuthConfigError(`kerberos: keytab ${path}: ${(err as Error).message}`);
    }
    if (!names.includes(principal)) {
      throw new AuthConfigError(
        `kerberos: principal ${principal} is not in keytab ${path} (it holds ${
          names.length ? names.join(", ") : "no keys"
        })`,
      );
    }
    setEnv("KRB5_CLIENT_KTNAME", `FILE:${path}`);
    setEnv("KRB5CCNAME", `MEMORY:kine-${Deno.pid}`);
  } else if (k.ccache !== "") {
    setEnv("KRB5CCNAME", k.ccache);
  }
  const who = principal ?? "the cached principal";
  return async (host) => {
    const target = `${k.service}@${host}`;
    let ctx: GssContext;
    try {
      ctx = await lib.initializeClient(target, { principal, mechOID: lib.GSS_MECH_OID_KRB5 });
    } catch (err) {
      throw gssError(target, who, err);
    }
    return {
      step: async (challenge) => {
        try {
          return await ctx.step(challenge);
        } catch (err) {
          throw gssError(target, who, err);
        }
      },
    };
  };
}

async function withDefaultRealm(user: string, env: Env): Promise<string> {
  const realm = await defaultRealm(env);
  if (!realm) {
    throw new AuthConfigError(
      `kerberos: DSN user ${user} has no realm and the krb5 configuration sets no default_realm; ` +
        `write the user as ${user}%40REALM`,
    );
  }
  return `${user}@${realm}`;
}

function gssError(target: string, who: string, err: unknown): KerberosAuthError {
  const msg = (err as Error)?.message ?? String(err);
  const [service, host] = target.split("@");
  return new KerberosAuthError(
    `kerberos: GSSAPI login as ${who} to service ${service}/${host} failed: ${msg}`,
  );
}
