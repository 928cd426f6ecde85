/**
 * `--identity-provider aws`: RDS IAM auth tokens as PostgreSQL passwords, checked by a front
 * that recomputes each token's SigV4 signature before relaying to a real PostgreSQL server.
 */
import assert from "node:assert/strict";
import { checkIdentityProvider } from "../lib/backend/sql/auth/identity.ts";
import { regionFromHost } from "../lib/backend/sql/auth/rds.ts";
import { applyMysqlAuth } from "../lib/backend/sql/auth/mysql.ts";
import { startPgCluster } from "./helpers/pg_cluster.ts";
import { pgLogin } from "./helpers/pg_login.ts";
import { need } from "./helpers/proc.ts";
import { checkToken, startRdsFront } from "./helpers/rds_front.ts";
import { Signer } from "@aws-sdk/rds-signer";
import mysql from "mysql2/promise";

const KEY = { id: "AKIAKINETEST0000001", secret: "kine-test-secret/with+chars=" };
const TEMP = {
  id: "ASIAKINETEST0000002",
  secret: "kine-temp-secret",
  session: "kine-session/tok+en=",
};

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
  assert.equal(checkIdentityProvider("aws"), undefined);
  assert.equal(checkIdentityProvider(""), undefined);
  assert.equal(
    checkIdentityProvider("azure"),
    'unknown identity provider "azure": valid values are "aws" (or empty for the DSN\'s password)',
  );
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
    () => applyMysqlAuth(plain, "aws", false),
    /cleartext password, so kine requires TLS .* allowCleartextPasswords=true/,
  );
  assert.ok(applyMysqlAuth(plain, "aws", true).authPlugins?.mysql_clear_password);
  assert.ok(applyMysqlAuth({ ...plain, ssl: {} }, "aws", false).authPlugins?.mysql_clear_password);
  assert.equal(applyMysqlAuth(plain, "", false), plain);
});

Deno.test("aws: PostgreSQL logins carry fresh RDS tokens the front verifies", async (t) => {
  const pg = await startPgCluster({ hba: [] });
  const dir = await Deno.makeTempDir({ prefix: "kine-aws-" });
  const isolated = isolatedAws(dir);
  const fromEnv = keysFromEnv(dir);
  const credentials = {
    [KEY.id]: { secret: KEY.secret },
    [TEMP.id]: { secret: TEMP.secret, sessionToken: TEMP.session },
  };
  const front = startRdsFront({
    host: "127.0.0.1",
    region: "us-east-1",
    credentials,
    upstreamPort: pg.port,
  });
  const dsn = `postgres://postgres:static-password@127.0.0.1:${front.port}/postgres`;
  try {
    await t.step("keys from the environment; every login a newly signed token", async () => {
      const { results, output } = await pgLogin(dsn, {
        env: fromEnv,
        identityProvider: "aws",
        logins: 2,
        pauseMs: 1100, // a new second, so a re-used token would show
      });
      assert.deepEqual(results, Array(2).fill({ user: "postgres", gss: false, ssl: false }));
      const logins = front.logins.splice(0);
      assert.equal(logins.length, 2);
      assert.deepEqual(logins.map((l) => l.refused), [undefined, undefined]);
      assert.notEqual(logins[0].token, logins[1].token);
      assert.ok(!output.includes("X-Amz-Signature"), output);
    });

    await t.step("temporary keys with AWS_SESSION_TOKEN", async () => {
      const { results } = await pgLogin(dsn, {
        env: {
          ...isolated,
          AWS_ACCESS_KEY_ID: TEMP.id,
          AWS_SECRET_ACCESS_KEY: TEMP.secret,
          AWS_SESSION_TOKEN: TEMP.session,
          AWS_REGION: "us-east-1",
        },
        identityProvider: "aws",
      });
      assert.deepEqual(results, [{ user: "postgres", gss: false, ssl: false }]);
      assert.match(front.logins.splice(0)[0].token, /X-Amz-Security-Token=/);
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
          const { results } = await pgLogin(dsn, {
            env: { ...isolated, AWS_PROFILE: "kine" },
            identityProvider: "aws",
          });
          assert.deepEqual(results, [{ user: "postgres", gss: false, ssl: false }]);
          assert.equal(front.logins.splice(0)[0].refused, undefined);
        } finally {
          await Deno.remove(isolated.AWS_SHARED_CREDENTIALS_FILE);
          await Deno.remove(isolated.AWS_CONFIG_FILE);
        }
      },
    );

    await t.step("a wrong secret is refused and reported as an authentication error", async () => {
      const { results, output } = await pgLogin(dsn, {
        env: { ...fromEnv, AWS_SECRET_ACCESS_KEY: "not-the-secret" },
        identityProvider: "aws",
      });
      assert.deepEqual(results, [{ error: 'PAM authentication failed for user "postgres"' }]);
      const [login] = front.logins.splice(0);
      assert.equal(login.refused, "bad signature");
      assert.ok(!output.includes(login.token.split("X-Amz-Signature=")[1]), output);
    });

    await t.step("no credentials anywhere: a clear error before any login", async () => {
      const { results } = await pgLogin(dsn, { env: isolated, identityProvider: "aws" });
      assert.equal(results.length, 1);
      assert.match(
        results[0].error!,
        /^aws identity provider: cannot sign an RDS auth token for postgres@127\.0\.0\.1:\d+: /,
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
    const { results } = await pgLogin(`postgres://postgres@${host}:${front.port}/postgres`, {
      env: keysFromEnv(dir),
      identityProvider: "aws",
      wrap: [
        "unshare",
        "--mount",
        "--",
        "sh",
        "-c",
        `mount --bind "$0" /etc/hosts && exec "$@"`,
        hosts,
      ],
    });
    assert.deepEqual(results, [{ user: "postgres", gss: false, ssl: false }]);
    assert.equal(front.logins[0].refused, undefined);
    assert.match(
      front.logins[0].token,
      new RegExp(`^${host.replaceAll(".", "\\.")}:${front.port}/`),
    );
  } finally {
    await front.close();
    await pg.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("aws: MySQL logins send the token through mysql_clear_password", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-aws-" });
  const env = keysFromEnv(dir);
  const saved = Object.keys(env).map((k) => [k, Deno.env.get(k)] as const);
  for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);
  const front = startRdsFront({
    protocol: "mysql",
    host: "127.0.0.1",
    region: "us-east-1",
    credentials: { [KEY.id]: { secret: KEY.secret } },
    upstreamPort: 3306, // the shared MariaDB; root logs in there without a password
  });
  const connect = (secret: string) => {
    Deno.env.set("AWS_SECRET_ACCESS_KEY", secret);
    return mysql.createConnection(
      applyMysqlAuth({ host: "127.0.0.1", port: front.port, user: "root" }, "aws", true),
    );
  };
  try {
    const conn = await connect(KEY.secret);
    const [rows] = await conn.query("SELECT CURRENT_USER() AS u");
    await conn.end();
    assert.equal((rows as { u: string }[])[0].u, "root@127.0.0.1");
    await assert.rejects(connect("not-the-secret"), /Access denied for user 'root'/);
    assert.deepEqual(front.logins.map((l) => l.refused), [undefined, "bad signature"]);
  } finally {
    for (const [k, v] of saved) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
    await front.close();
    await Deno.remove(dir, { recursive: true });
  }
});
