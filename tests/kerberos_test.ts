/**
 * Kerberos/GSSAPI logins to PostgreSQL against a private MIT KDC and a private PostgreSQL
 * cluster whose pg_hba requires `gss` for the role `kine` (fork.md §2).
 */
import assert from "node:assert/strict";
import { startKdc } from "./helpers/kdc.ts";
import { startPgCluster } from "./helpers/pg_cluster.ts";
import { pgLogin } from "./helpers/pg_login.ts";

Deno.test("kerberos: GSSAPI logins to PostgreSQL with a private KDC", async (t) => {
  // Tickets live 10 s, so the renewal step below sees the first ones expire.
  const kdc = await startKdc({ maxLife: "10s" });
  const keytab = `${kdc.dir}/kine.keytab`;
  const serverKeytab = `${kdc.dir}/postgres.keytab`;
  await kdc.addPrincipal("kine");
  await kdc.addPrincipal("other");
  await kdc.addPrincipal("postgres/127.0.0.1");
  await kdc.exportKeytab(keytab, "kine");
  await kdc.exportKeytab(serverKeytab, "postgres/127.0.0.1");
  const pg = await startPgCluster({
    hba: [`host all kine 127.0.0.1/32 gss include_realm=0 krb_realm=${kdc.realm}`],
    conf: { krb_server_keyfile: `'FILE:${serverKeytab}'` },
    env: { KRB5_CONFIG: kdc.krb5Conf },
    tls: true,
  });
  try {
    await pg.psql("create role kine login");
    const base = `postgres://kine@127.0.0.1:${pg.port}/postgres`;
    const env = { KRB5_CONFIG: kdc.krb5Conf };
    const one = async (dsn: string, extraEnv: Record<string, string> = {}) =>
      (await pgLogin(dsn, { env: { ...env, ...extraEnv } })).results[0];

    await t.step("keytab mode: a GSS-authenticated session as the bare role", async () => {
      assert.deepEqual(await one(`${base}?krb5_keytab=${keytab}`), {
        user: "kine",
        gss: true,
        ssl: false,
      });
    });

    await t.step("keytab mode over TLS, realm written in the DSN user", async () => {
      const dsn = `postgres://kine%40${kdc.realm}@127.0.0.1:${pg.port}/postgres` +
        `?krb5_keytab=${keytab}&sslmode=require`;
      assert.deepEqual(await one(dsn), { user: "kine", gss: true, ssl: true });
    });

    await t.step("KRB5_KTNAME selects keytab mode, FILE: prefix and all", async () => {
      assert.deepEqual(await one(base, { KRB5_KTNAME: `FILE:${keytab}` }), {
        user: "kine",
        gss: true,
        ssl: false,
      });
    });

    await t.step("credential-cache mode uses the tickets kinit left", async () => {
      const ccache = `FILE:${kdc.dir}/kine.ccache`;
      await kdc.kinit("kine", keytab, ccache);
      assert.deepEqual(await one(`${base}?krb5_ccache=${ccache}&krbsrvname=postgres`), {
        user: "kine",
        gss: true,
        ssl: false,
      });
      // KRB5CCNAME alone does not switch GSSAPI on: the driver gets the server's GSS request.
      const plain = await one(`${base}?connect_timeout=2`, { KRB5CCNAME: ccache });
      assert.ok(plain.error, JSON.stringify(plain));
      assert.ok(!plain.gss);
    });

    await t.step("start-up errors name the principal, the path or the parameters", async () => {
      const missing = await one(`${base.replace("kine@", "other@")}?krb5_keytab=${keytab}`);
      assert.equal(missing.startup, true);
      assert.equal(
        missing.error,
        `kerberos: principal other@${kdc.realm} is not in keytab ${keytab} (it holds kine@${kdc.realm})`,
      );
      const gone = `${kdc.dir}/absent.keytab`;
      const unreadable = await one(`${base}?krb5_keytab=${gone}`);
      assert.equal(unreadable.startup, true);
      assert.match(unreadable.error!, new RegExp(`^kerberos: cannot read keytab ${gone}: `));
      const both = await one(`${base}?krb5_keytab=${keytab}&krb5_ccache=`);
      assert.equal(
        both.error,
        "krb5_keytab and krb5_ccache are mutually exclusive: set one of them in the DSN",
      );
    });

    await t.step("the service principal is postgres/<host as written>", async () => {
      const r = await one(`${base.replace("127.0.0.1", "localhost")}?krb5_keytab=${keytab}`);
      assert.match(
        r.error!,
        /service postgres\/localhost failed: .*not found in Kerberos database/,
      );
    });

    await t.step("tickets expire and the key is rotated: new logins keep working", async () => {
      // Three logins 6 s apart span more than one 10 s ticket lifetime; the client's key is
      // replaced in the KDC and the keytab rewritten in place after the first.
      let rotated: Promise<void> | undefined;
      const { results } = await pgLogin(`${base}?krb5_keytab=${keytab}`, {
        env,
        logins: 3,
        pauseMs: 6_000,
        onLogin: () => rotated ??= kdc.rotate("kine", keytab),
      });
      await rotated;
      assert.deepEqual(results, Array(3).fill({ user: "kine", gss: true, ssl: false }));
      const log = await Deno.readTextFile(`${kdc.dir}/kdc.log`);
      assert.match(log, /kine@KINE\.TEST for krbtgt/); // tickets came from this KDC
    });
  } finally {
    await pg.stop();
    await kdc.stop();
  }
});
