/**
 * `--identity-provider aws`: kine logs in to PostgreSQL and MySQL with RDS IAM auth tokens,
 * checked by a front that recomputes each token's SigV4 signature before relaying to a real
 * server on loopback.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../lib/config/mod.ts";
import { regionFromHost } from "../lib/backend/sql/auth/rds.ts";
import { mysqlLogin } from "../lib/backend/sql/auth/mysql.ts";
import { startPgCluster } from "./helpers/pg_cluster.ts";
import { endpointArgs, spawnKineFails, withDaemon } from "./helpers/daemon.ts";
import { basics } from "./helpers/etcdctl.ts";
import { need } from "./helpers/proc.ts";
import { checkToken, signedAt, startRdsFront } from "./helpers/rds_front.ts";
import { Signer } from "@aws-sdk/rds-signer";
import mysql from "mysql2/promise";

const KEY = { id: "AKIAKINETEST0000001", secret: "kine-test-secret/with+chars=" };
const TEMP = {
  id: "ASIAKINETEST0000002",
  secret: "kine-temp-secret",
  session: "kine-session/tok+en=",
};

/** The environment kine runs with: PATH and HOME kept, nothing else inherited. */
function kineEnv(aws: Record<string, string>): Record<string, string> {
  const keep: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "NO_COLOR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) keep[k] = v;
  }
  return { ...keep, ...aws };
}

/** A token must never reach kine's log: neither its signature nor the presigned URL. */
function assertNoToken(log: string): void {
  assert.ok(!/X-Amz-(Signature|Credential|Security-Token)/.test(log), log);
}

/** AWS settings that keep the machine's AWS set-up out and never ask a metadata service. */
function isolatedAws(dir: string): Record<string, string> {
  return {
    AWS_CONFIG_FILE: `${dir}/config`,
    AWS_SHARED_CREDENTIALS_FILE: `${dir}/credentials`,
    AWS_EC2_METADATA_DISABLED: "true",
  };
}

/** {@link isolatedAws} plus the test's long-term keys and region in the environment. */
function keysFromEnv(dir: string): Record<string, string> {
  return {
    ...isolatedAws(dir),
    AWS_ACCESS_KEY_ID: KEY.id,
    AWS_SECRET_ACCESS_KEY: KEY.secret,
    AWS_REGION: "us-east-1",
  };
}

Deno.test("aws: --identity-provider accepts aws and names the valid values otherwise", () => {
  assert.equal(parseArgs(["--identity-provider", "aws"], {}).kind, "config");
  assert.deepEqual(parseArgs([], { KINE_IDENTITY_PROVIDER: "azure" }), {
    kind: "error",
    message:
      'unknown identity provider "azure": valid values are "aws" (or empty for the DSN\'s password)',
  });
});

Deno.test("aws: the region comes from an <instance>.<region>.rds.amazonaws.com host", () => {
  assert.equal(regionFromHost("db1.abc123.eu-west-1.rds.amazonaws.com"), "eu-west-1");
  assert.equal(regionFromHost("db1.eu-central-1.rds.amazonaws.com"), "eu-central-1");
  assert.equal(regionFromHost("db.example.com"), undefined);
  assert.equal(regionFromHost("127.0.0.1"), undefined);
});

Deno.test("aws: the front accepts only a token for its host, port, user and region", async () => {
  const sign = (o: { host?: string; user?: string; region?: string; secret?: string }) =>
    new Signer({
      hostname: o.host ?? "127.0.0.1",
      port: 5000,
      username: o.user ?? "kine",
      region: o.region ?? "us-east-1",
      credentials: { accessKeyId: KEY.id, secretAccessKey: o.secret ?? KEY.secret },
    }).getAuthToken();
  const front = { region: "us-east-1", credentials: { [KEY.id]: { secret: KEY.secret } } };
  const check = async (token: Promise<string>, now?: number) =>
    checkToken(await token, "kine", "127.0.0.1:5000", front, now);
  assert.equal(await check(sign({})), undefined);
  assert.equal(await check(sign({ host: "localhost" })), "signed for localhost:5000");
  assert.equal(await check(sign({ user: "root" })), "signed for user root");
  assert.equal(await check(sign({ region: "eu-west-1" })), "signed for region eu-west-1");
  assert.equal(await check(sign({ secret: "wrong" })), "bad signature");
  assert.equal(await check(sign({}), Date.now() + 16 * 60_000), "expired");
});

Deno.test("aws: MySQL refuses to send the token without TLS unless told to", () => {
  const plain = { host: "db.eu-west-1.rds.amazonaws.com", port: 3306, user: "kine" };
  assert.throws(
    () => mysqlLogin(plain, "aws", false),
    /cleartext password, so kine requires TLS .* allowCleartextPasswords=true/,
  );
  assert.ok(mysqlLogin(plain, "aws", true).authPlugins?.mysql_clear_password);
  assert.ok(mysqlLogin({ ...plain, ssl: {} }, "aws", false).authPlugins?.mysql_clear_password);
  assert.deepEqual(mysqlLogin(plain, "", false), {});
});

Deno.test("aws: kine on PostgreSQL logs in with fresh RDS tokens the front verifies", async (t) => {
  const pg = await startPgCluster({ hba: [] });
  const dir = await Deno.makeTempDir({ prefix: "kine-aws-" });
  const isolated = isolatedAws(dir);
  const front = startRdsFront({
    host: "127.0.0.1",
    region: "us-east-1",
    credentials: {
      [KEY.id]: { secret: KEY.secret },
      [TEMP.id]: { secret: TEMP.secret, sessionToken: TEMP.session },
    },
    upstreamPort: pg.port,
  });
  // The static password is replaced by tokens; the front would refuse it.
  const args = (...flags: string[]) =>
    endpointArgs(
      `postgres://postgres:static-password@127.0.0.1:${front.port}/kine?sslmode=disable`,
      "--identity-provider",
      "aws",
      ...flags,
    );
  const opts = (aws: Record<string, string>) => ({ env: kineEnv(aws), clearEnv: true });
  const startFails = (aws: Record<string, string>) =>
    spawnKineFails(dir, args("--datastore-retry-timeout", "1s"), opts(aws));
  /** Runs `fn` against a kine with these AWS settings and `flags`; no token in its log. */
  const serve = async (
    aws: Record<string, string>,
    flags: string[],
    fn: (target: string) => Promise<void>,
  ) => assertNoToken(await withDaemon(dir, args(...flags), opts(aws), (k) => fn(k.target)));
  try {
    await t.step("keys from the environment; every new connection a new token", async () => {
      // Connections live 1 s, so kine keeps logging in while it serves.
      await serve(keysFromEnv(dir), ["--datastore-connection-max-lifetime", "1s"], async (k) => {
        for (let i = 0; i < 3; i++) {
          await basics(k, `/env-${i}`);
          await new Promise((r) => setTimeout(r, 1100));
        }
      });
      const logins = front.logins.splice(0);
      assert.ok(logins.length >= 3, `only ${logins.length} logins`);
      assert.deepEqual(logins.filter((l) => l.refused), []);
      // Each login's token was signed as it logged in (whole seconds; slack for a loaded box),
      // so logins seconds apart carry different tokens.
      for (const l of logins) {
        const lag = l.at - signedAt(l.token);
        assert.ok(lag >= -1000 && lag < 5000, `token signed ${lag} ms before its login`);
      }
      assert.ok(new Set(logins.map((l) => l.token)).size >= 2, "one token for every login");
    });

    await t.step("temporary keys with AWS_SESSION_TOKEN", async () => {
      const aws = {
        ...isolated,
        AWS_ACCESS_KEY_ID: TEMP.id,
        AWS_SECRET_ACCESS_KEY: TEMP.secret,
        AWS_SESSION_TOKEN: TEMP.session,
        AWS_REGION: "us-east-1",
      };
      await serve(aws, [], (k) => basics(k, "/session"));
      const logins = front.logins.splice(0);
      assert.deepEqual(logins.filter((l) => l.refused), []);
      assert.match(logins[0].token, /X-Amz-Security-Token=/);
    });

    await t.step(
      "a shared profile: credentials file, config file region, AWS_PROFILE",
      async () => {
        await Deno.writeTextFile(
          isolated.AWS_SHARED_CREDENTIALS_FILE,
          `[kine]\naws_access_key_id = ${KEY.id}\naws_secret_access_key = ${KEY.secret}\n`,
        );
        await Deno.writeTextFile(isolated.AWS_CONFIG_FILE, "[profile kine]\nregion = us-east-1\n");
        try {
          await serve({ ...isolated, AWS_PROFILE: "kine" }, [], (k) => basics(k, "/profile"));
          const logins = front.logins.splice(0);
          assert.ok(logins.length > 0);
          assert.deepEqual(logins.filter((l) => l.refused), []);
        } finally {
          await Deno.remove(isolated.AWS_SHARED_CREDENTIALS_FILE);
          await Deno.remove(isolated.AWS_CONFIG_FILE);
        }
      },
    );

    await t.step("a wrong secret is refused by the front and reported by kine", async () => {
      const log = await startFails({ ...keysFromEnv(dir), AWS_SECRET_ACCESS_KEY: "not-it" });
      assert.match(
        log,
        new RegExp(
          `failed to start kine: failed to connect to datastore postgres://postgres:\\*\\*\\*@` +
            `127\\.0\\.0\\.1:${front.port}/kine: PAM authentication failed for user "postgres"`,
        ),
      );
      assertNoToken(log);
      const logins = front.logins.splice(0);
      assert.ok(logins.length > 0);
      assert.deepEqual(logins.filter((l) => l.refused !== "bad signature"), []);
    });

    await t.step("no credentials anywhere: a clear error, and no login attempt", async () => {
      const log = await startFails(isolated);
      assert.match(
        log,
        /aws identity provider: cannot sign an RDS auth token for postgres@127\.0\.0\.1:\d+: Could not load credentials from any providers/,
      );
      assert.equal(front.logins.splice(0).length, 0);
    });
  } finally {
    await front.close();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("aws: the region of an *.rds.amazonaws.com host wins over AWS_REGION", async () => {
  need("unshare", "util-linux");
  const host = "kine-db.c1a2b3.eu-west-1.rds.amazonaws.com";
  const pg = await startPgCluster({ hba: [] });
  const dir = await Deno.makeTempDir({ prefix: "kine-aws-" });
  const front = startRdsFront({
    host,
    region: "eu-west-1",
    credentials: { [KEY.id]: { secret: KEY.secret } },
    upstreamPort: pg.port,
  });
  try {
    // The name resolves to loopback only inside a private mount namespace with its own hosts
    // file; the machine's /etc/hosts is not touched.
    const hosts = `${dir}/hosts`;
    await Deno.writeTextFile(hosts, `127.0.0.1 localhost\n127.0.0.1 ${host}\n`);
    const endpoint = `postgres://postgres@${host}:${front.port}/kine?sslmode=disable`;
    // Without root, a user namespace maps us to root inside it, so the bind mount is allowed.
    const unshare = ["unshare", "--mount", ...(Deno.uid() === 0 ? [] : ["--map-root-user"])];
    const bind = ["sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"'];
    const wrap = [...unshare, "--", ...bind];
    const opts = { env: kineEnv(keysFromEnv(dir)), clearEnv: true, wrap: [...wrap, hosts] };
    const args = endpointArgs(endpoint, "--identity-provider", "aws"); // AWS_REGION=us-east-1
    await withDaemon(dir, args, opts, (k) => basics(k.target, "/region"));
    assert.ok(front.logins.length > 0);
    assert.deepEqual(front.logins.filter((l) => l.refused), []);
    assert.ok(front.logins[0].token.startsWith(`${host}:${front.port}/`));
  } finally {
    await front.close();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("aws: kine on MySQL sends tokens through mysql_clear_password, over TLS only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-aws-" });
  const database = `kt_rds_${Date.now()}`;
  const front = startRdsFront({
    protocol: "mysql",
    host: "127.0.0.1",
    region: "us-east-1",
    credentials: { [KEY.id]: { secret: KEY.secret } },
    upstreamPort: 3306, // the shared MariaDB; root logs in there without a password
  });
  const endpoint = `mysql://root@tcp(127.0.0.1:${front.port})/${database}`;
  const opts = { env: kineEnv(keysFromEnv(dir)), clearEnv: true };
  try {
    const refused = await spawnKineFails(
      dir,
      endpointArgs(endpoint, "--identity-provider", "aws"),
      opts,
    );
    assert.match(
      refused,
      /failed to start kine: --identity-provider aws with MySQL sends the RDS auth token as a cleartext password, so kine requires TLS/,
    );
    assert.equal(front.logins.length, 0);
    // The front speaks no TLS: the test consents to cleartext explicitly.
    const args = endpointArgs(
      `${endpoint}?allowCleartextPasswords=true`,
      "--identity-provider",
      "aws",
    );
    assertNoToken(await withDaemon(dir, args, opts, (k) => basics(k.target, "/mysql")));
    assert.ok(front.logins.length > 0);
    assert.deepEqual(front.logins.filter((l) => l.refused), []);
  } finally {
    await front.close();
    const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
    await conn.query(`DROP DATABASE IF EXISTS ${database}`).finally(() => conn.end());
    await Deno.remove(dir, { recursive: true });
  }
});
