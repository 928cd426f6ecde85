/**
 * kine on PostgreSQL authenticated only by Kerberos/GSSAPI (fork.md §2): a private MIT KDC, a
 * private PostgreSQL cluster whose pg_hba requires `gss` for the role `kine`, and kine daemons
 * whose sessions are checked on the server (`pg_stat_gssapi`).
 */
import assert from "node:assert/strict";
import { endpointArgs, spawnKineFails, withDaemon } from "./helpers/daemon.ts";
import { basics } from "./helpers/etcdctl.ts";
import { startKdc } from "./helpers/kdc.ts";
import { startPgCluster } from "./helpers/pg_cluster.ts";

Deno.test("kerberos: kine on PostgreSQL with GSSAPI logins only", async (t) => {
  // Tickets live 10 s, so the last step sees the first ones expire.
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
  const cwd = await Deno.makeTempDir({ prefix: "kine-krb-" });
  const base = `postgres://kine@127.0.0.1:${pg.port}/kine`;
  const env = (extra: Record<string, string>) => ({ env: { KRB5_CONFIG: kdc.krb5Conf, ...extra } });
  /** Runs `fn` against a kine on `dsn` (with `extra` environment and `flags`). */
  const serve = (
    dsn: string,
    extra: Record<string, string>,
    flags: string[],
    fn: (target: string) => Promise<void>,
  ) => withDaemon(cwd, endpointArgs(dsn, ...flags), env(extra), (k) => fn(k.target));
  const startFails = (dsn: string, extra: Record<string, string> = {}, ...flags: string[]) =>
    spawnKineFails(cwd, endpointArgs(dsn, ...flags), env(extra));
  /** kine's sessions on the server: GSS-authenticated?, as whom, over TLS?, since when. */
  const sessions = async () =>
    (await pg.psql(
      "select g.gss_authenticated, g.principal, s.ssl, extract(epoch from a.backend_start) " +
        "from pg_stat_activity a join pg_stat_gssapi g using (pid) join pg_stat_ssl s using (pid) " +
        "where a.usename = 'kine'",
    )).trim().split("\n").filter((l) => l).map((l) => {
      const [gss, principal, ssl, since] = l.split("|");
      return { gss: gss === "t", principal, ssl: ssl === "t", since: Number(since) * 1000 };
    });
  type Session = Awaited<ReturnType<typeof sessions>>[number];
  const gssOnly = async (ssl: boolean, seen?: Session[]) => {
    const all = seen ?? await sessions();
    assert.ok(all.length > 0, "kine holds no session");
    for (const s of all) {
      assert.deepEqual({ ...s, since: 0 }, {
        gss: true,
        principal: "kine@KINE.TEST",
        ssl,
        since: 0,
      });
    }
  };
  try {
    await pg.psql("create role kine login");
    await pg.psql("create database kine owner kine");

    await t.step("keytab mode: every session GSS-authenticated as the bare role", async () => {
      await serve(`${base}?krb5_keytab=${keytab}&sslmode=disable`, {}, [], async (target) => {
        await basics(target, "/keytab");
        await gssOnly(false);
      });
    });

    await t.step("over TLS, with the realm written in the DSN user", async () => {
      const dsn = `postgres://kine%40${kdc.realm}@127.0.0.1:${pg.port}/kine` +
        `?krb5_keytab=${keytab}&sslmode=require`;
      await serve(dsn, {}, [], async (target) => {
        await basics(target, "/tls");
        await gssOnly(true);
      });
    });

    await t.step("KRB5_KTNAME selects keytab mode, FILE: prefix and all", async () => {
      await serve(`${base}?sslmode=disable`, { KRB5_KTNAME: `FILE:${keytab}` }, [], async (t) => {
        await basics(t, "/ktname");
        await gssOnly(false);
      });
    });

    await t.step("credential-cache mode uses the tickets kinit left", async () => {
      const ccache = `FILE:${kdc.dir}/kine.ccache`;
      await kdc.kinit("kine", keytab, ccache);
      const dsn = `${base}?krb5_ccache=${ccache}&krbsrvname=postgres&sslmode=disable`;
      await serve(dsn, {}, [], async (target) => {
        await basics(target, "/ccache");
        await gssOnly(false);
      });
      // KRB5CCNAME alone does not switch GSSAPI on: no login, kine does not start.
      const err = await startFails(
        `${base}?sslmode=disable&connect_timeout=1`,
        { KRB5CCNAME: ccache },
        "--datastore-retry-timeout",
        "1s",
      );
      assert.match(err, /failed to connect to datastore/);
    });

    await t.step("start-up errors name the principal, the path or the parameters", async () => {
      const other = `postgres://other@127.0.0.1:${pg.port}/kine?krb5_keytab=${keytab}`;
      assert.match(
        await startFails(other),
        new RegExp(
          `failed to start kine: kerberos: principal other@${kdc.realm} is not in keytab ` +
            `${keytab} \\(it holds kine@${kdc.realm}\\)`,
        ),
      );
      const gone = `${kdc.dir}/absent.keytab`;
      assert.match(
        await startFails(`${base}?krb5_keytab=${gone}`),
        new RegExp(`failed to start kine: kerberos: cannot read keytab ${gone}: No such file`),
      );
      assert.match(
        await startFails(`${base}?krb5_keytab=${keytab}&krb5_ccache=`),
        /failed to start kine: krb5_keytab and krb5_ccache are mutually exclusive/,
      );
    });

    await t.step("the service principal is postgres/<host as written in the DSN>", async () => {
      const dsn = `postgres://kine@localhost:${pg.port}/kine?krb5_keytab=${keytab}`;
      assert.match(
        await startFails(dsn),
        /kerberos: GSSAPI login as kine@KINE\.TEST to service postgres\/localhost failed: .*Server postgres\/localhost@KINE\.TEST not found in Kerberos database/,
      );
    });

    await t.step("tickets expire and the key is rotated: kine keeps serving", async () => {
      // Connections live 1 s, so kine logs in again and again; the client key is replaced in
      // the KDC and the keytab rewritten in place; writes go on past the 10 s ticket lifetime.
      const dsn = `${base}?krb5_keytab=${keytab}&sslmode=disable`;
      const lifetime = ["--datastore-connection-max-lifetime", "1s"];
      await serve(dsn, {}, lifetime, async (target) => {
        await basics(target, "/before");
        const rotatedAt = Date.now();
        await kdc.rotate("kine", keytab);
        const seen: Session[] = [];
        for (let i = 0; i < 12; i++) {
          await basics(target, `/after-${i}`);
          seen.push(...await sessions());
          await new Promise((r) => setTimeout(r, 1000));
        }
        await gssOnly(false, seen);
        const fresh = seen.filter((s) => s.since > rotatedAt + 10_000);
        assert.ok(fresh.length > 0, "no session logged in after the first tickets expired");
      });
    });
  } finally {
    await pg.stop();
    await kdc.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});
