/**
 * A private MIT Kerberos KDC for tests: its own realm, configuration directory and loopback port,
 * administered with `kadmin.local` (no kadmind). Nothing outside its temporary directory is read
 * or written; processes that should use it get {@link Kdc.env}.
 */
import { freePort, need, run, waitForPort } from "./proc.ts";

export interface Kdc {
  realm: string;
  dir: string;
  /** The client/server krb5.conf: default realm, this KDC, no DNS canonicalisation. */
  krb5Conf: string;
  /** `KRB5_CONFIG` (and `KRB5_KDC_PROFILE`) for processes that use this realm. */
  env: Record<string, string>;
  /** Creates a principal with a random key. */
  addPrincipal(name: string): Promise<void>;
  /** Writes the principals' current keys to a keytab (without re-keying them). */
  exportKeytab(path: string, ...principals: string[]): Promise<void>;
  /** Gives the principal a new random key and rewrites `keytab` in place with only that key. */
  rotate(principal: string, keytab: string): Promise<void>;
  /** `kinit` from a keytab into a credential cache. */
  kinit(principal: string, keytab: string, ccache: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a KDC for `realm`. `maxLife` bounds every ticket (e.g. `"20s"`); the client clock skew
 * is 1 second so an expired ticket is really refused.
 */
export async function startKdc(
  opts: { realm?: string; maxLife?: string } = {},
): Promise<Kdc> {
  const krb5kdc = need("krb5kdc", "krb5-kdc");
  const kdb5Util = need("kdb5_util", "krb5-kdc");
  const kadmin = need("kadmin.local", "krb5-admin-server");
  const realm = opts.realm ?? "KINE.TEST";
  const dir = await Deno.makeTempDir({ prefix: "kine-kdc-" });
  await Deno.chmod(dir, 0o755); // the PostgreSQL server (another user) reads keytabs from here
  const port = freePort();
  const kdcConf = `${dir}/kdc.conf`;
  const krb5Conf = `${dir}/krb5.conf`;
  await Deno.writeTextFile(
    kdcConf,
    `[kdcdefaults]
 kdc_listen = 127.0.0.1:${port}
 kdc_tcp_listen = 127.0.0.1:${port}
[realms]
 ${realm} = {
  database_name = ${dir}/principal
  key_stash_file = ${dir}/stash
  acl_file = ${dir}/kadm5.acl
  max_life = ${opts.maxLife ?? "10h"}
  max_renewable_life = 0
 }
[logging]
 kdc = FILE:${dir}/kdc.log
`,
  );
  await Deno.writeTextFile(
    krb5Conf,
    `[libdefaults]
 default_realm = ${realm}
 dns_lookup_realm = false
 dns_lookup_kdc = false
 dns_canonicalize_hostname = false
 rdns = false
 udp_preference_limit = 1
 clockskew = 1
[realms]
 ${realm} = {
  kdc = 127.0.0.1:${port}
 }
`,
  );
  const env = { KRB5_CONFIG: krb5Conf, KRB5_KDC_PROFILE: kdcConf };
  const admin = (q: string) => run(kadmin, ["-r", realm, "-q", q], { env });
  await run(kdb5Util, ["create", "-s", "-r", realm, "-P", "kine-test-master"], { env });
  const child = new Deno.Command(krb5kdc, {
    args: ["-n", "-r", realm],
    env,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await waitForPort(port);
  } catch (err) {
    child.kill("SIGKILL");
    await child.status;
    throw err;
  }
  const kdc: Kdc = {
    realm,
    dir,
    krb5Conf,
    env,
    addPrincipal: async (name) => void await admin(`addprinc -randkey ${name}`),
    exportKeytab: async (path, ...principals) => {
      for (const p of principals) await admin(`ktadd -norandkey -k ${path} ${p}`);
      await Deno.chmod(path, 0o644);
    },
    rotate: async (principal, keytab) => {
      const fresh = `${keytab}.new`;
      await Deno.remove(fresh).catch(() => {});
      await admin(`ktadd -k ${fresh} ${principal}`); // new random key, kvno + 1
      // Rewrite the existing file (same inode), as a secrets agent updating a mount would.
      await Deno.writeFile(keytab, await Deno.readFile(fresh));
      await Deno.remove(fresh);
    },
    kinit: async (principal, keytab, ccache) =>
      void await run(need("kinit", "krb5-user"), ["-k", "-t", keytab, "-c", ccache, principal], {
        env,
      }),
    stop: async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
  return kdc;
}
