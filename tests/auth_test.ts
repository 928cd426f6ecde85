/**
 * etcd authentication and role-based access (lib/auth): the Auth service,
 * permission checks on every request, tokens, common-name users, brute-force
 * limits, and auth state shared through the database. Through etcdctl 3.4
 * and our own client, on every backend of the conformance list.
 */
import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import type * as grpc from "@grpc/grpc-js";
import * as jose from "jose";
import { AUTH_KEY } from "../lib/auth/mod.ts";
import { plainRange } from "../lib/backend/types.ts";
import { silentLogger } from "../lib/log/mod.ts";
import { startKine } from "../lib/mod.ts";
import { BACKENDS } from "./helpers/backends.ts";
import { makeCerts } from "./helpers/certs.ts";
import { md, tenant } from "./helpers/auth.ts";
import { b, connect, type EtcdClient, s } from "./helpers/client.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, type TestKine, withKine } from "./helpers/kine.ts";
import { WatchClient } from "./helpers/watch.ts";

const INVALID_ARGUMENT = 3;
const PERMISSION_DENIED = 7;
const FAILED_PRECONDITION = 9;
const UNAUTHENTICATED = 16;

const DENIED = "etcdserver: permission denied";
const USER_EMPTY = "etcdserver: user name is empty";
const AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password";

/** Most tests hash with the cheapest bcrypt cost; one checks etcd's default. */
const FAST = { bcryptCost: 4 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Backends whose state outlives a server and is shared by several. */
const SHARED = BACKENDS.filter((bk) => bk.persistent);

/** Resolves to the gRPC error of a call that must fail. */
async function rejected(p: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as grpc.ServiceError;
  }
  throw new Error("the call succeeded");
}

async function refuses(p: Promise<unknown>, code: number, text: string): Promise<void> {
  const err = await rejected(p);
  assert.equal(err.details, text);
  assert.equal(err.code, code, `code for ${text}`);
}

const login = (c: EtcdClient, name: string, password: string) =>
  c.auth.authenticate({ name, password });

async function token(c: EtcdClient, name: string, password: string): Promise<string> {
  return (await login(c, name, password)).token;
}

for (const backend of BACKENDS) {
  const name = (what: string) => `[${backend.name}] auth: ${what}`;

  Deno.test(
    name("etcdctl users, roles, prefix permissions, txn branches, enable/disable"),
    () =>
      withKine(
        async (k) => {
          const ctl = (args: string[], user?: string) =>
            etcdctl(k.endpoint, user ? [`--user=${user}`, ...args] : args);
          const ok = async (args: string[], user?: string) => {
            const r = await ctl(args, user);
            assert.equal(r.code, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
            return r.stdout;
          };
          const fails = async (args: string[], user: string | undefined, text: string) => {
            const r = await ctl(args, user);
            assert.notEqual(r.code, 0, `etcdctl ${args.join(" ")} succeeded: ${r.stdout}`);
            assert.match(r.stderr, new RegExp(`Error: ${text}`), args.join(" "));
          };
          const alice = "alice:apw";
          await ok(["user", "add", "root:rootpw"]);
          await ok(["role", "add", "tenant"]);
          await ok(["role", "grant-permission", "--prefix", "tenant", "readwrite", "/t/"]);
          await ok(["role", "grant-permission", "tenant", "read", "/ro"]);
          await ok(["user", "add", "alice:apw"]);
          await ok(["user", "grant-role", "alice", "tenant"]);
          await ok(["put", "/u/a", "before"]);
          assert.equal(await ok(["auth", "enable"]), "Authentication Enabled\n");

          await fails(["put", "/t/a", "v"], undefined, USER_EMPTY);
          await ok(["put", "/t/a", "v"], alice);
          assert.equal(await ok(["get", "/t/a", "--print-value-only"], alice), "v\n");
          await fails(["put", "/u/a", "v"], alice, DENIED);
          // The edges of the prefix: "/t." sorts just before "/t/", "/t0" is its range end.
          await fails(["put", "/t.", "v"], alice, DENIED);
          await fails(["put", "/t0", "v"], alice, DENIED);
          await ok(["get", "/t/", "/t0"], alice);
          await fails(["get", "/t/", "/t1"], alice, DENIED);
          await fails(["get", "--prefix", ""], alice, DENIED);
          await ok(["get", "/ro"], alice);
          await fails(["put", "/ro", "v"], alice, DENIED);
          await fails(["del", "--prefix", "/"], alice, DENIED);

          // A txn is checked whole: compares, and both branches whichever runs.
          const txn = (compare: string, success: string, failure: string) =>
            etcdctl(k.endpoint, [`--user=${alice}`, "txn"], {
              stdin: `${compare}\n\n${success}\n\n${failure}\n\n`,
            });
          let r = await txn('value("/u/a") = "before"', "put /t/x 1", "");
          assert.match(r.stderr, new RegExp(DENIED));
          r = await txn('value("/t/a") = "v"', "put /t/x 1", "put /u/x 1");
          assert.match(r.stderr, new RegExp(DENIED));
          r = await txn('value("/t/a") = "v"', "put /t/a w", "get /t/a");
          assert.equal(r.code, 0, r.stderr);
          assert.match(r.stdout, /^SUCCESS/);

          const watch = await etcdctl(k.endpoint, [`--user=${alice}`, "watch", "/u/a"]);
          assert.match(
            watch.stdout + watch.stderr,
            /watch was canceled \(rpc error: code = PermissionDenied desc = etcdserver: permission denied\)/,
          );

          // root sees every client key and never kine's own auth row.
          assert.deepEqual(
            (await ok(["get", "--prefix", "", "--keys-only"], "root:rootpw")).split("\n").filter(
              Boolean,
            ),
            ["/registry/health", "/t/a", "/u/a"],
          );
          await fails(["auth", "disable"], alice, DENIED);
          assert.equal(await ok(["auth", "disable"], "root:rootpw"), "Authentication Disabled\n");
          await ok(["put", "/u/a", "after"]);
        },
        FAST,
        backend,
      ),
  );

  Deno.test(
    name("every Auth RPC with etcd's codes and texts; the auth revision"),
    () =>
      withKine(
        async (k) => {
          const c = k.client;
          const status = async (m?: grpc.Metadata) => await c.auth.authStatus({}, m);
          assert.deepEqual(
            { enabled: (await status()).enabled, rev: Number((await status()).authRevision) },
            { enabled: false, rev: 1 },
          );
          await refuses(
            c.auth.authEnable({}),
            FAILED_PRECONDITION,
            "etcdserver: root user does not exist",
          );
          await c.auth.userAdd({ name: "root", password: "rootpw" });
          await refuses(
            c.auth.authEnable({}),
            FAILED_PRECONDITION,
            "etcdserver: root user does not have root role",
          );
          // The root role need not exist to be granted.
          await c.auth.userGrantRole({ user: "root", role: "root" });
          await refuses(
            login(c, "root", "rootpw"),
            FAILED_PRECONDITION,
            "etcdserver: authentication is not enabled",
          );
          await c.auth.authEnable({});
          await c.auth.authEnable({}, md(await token(c, "root", "rootpw"))); // enabling twice is fine

          await refuses(c.auth.userList({}), INVALID_ARGUMENT, USER_EMPTY);
          await refuses(
            login(c, "root", "nope"),
            INVALID_ARGUMENT,
            AUTH_FAILED,
          );
          await refuses(
            login(c, "ghost", "x"),
            INVALID_ARGUMENT,
            AUTH_FAILED,
          );
          const root = md(await token(c, "root", "rootpw"));
          const rev = async () => Number((await status(root)).authRevision);

          let before = await rev();
          await c.auth.userAdd({ name: "alice", password: "apw" }, root);
          assert.equal(await rev(), before + 1, "each change advances the auth revision by one");
          await c.auth.roleAdd({ name: "r1" }, root);
          await c.auth.roleGrantPermission(
            { name: "r1", perm: { permType: "READ", key: b("/a"), range_end: b("/b") } },
            root,
          );
          await c.auth.roleGrantPermission(
            { name: "r1", perm: { permType: "READWRITE", key: b("/a"), range_end: b("/b") } },
            root,
          );
          await c.auth.roleGrantPermission(
            { name: "r1", perm: { permType: "WRITE", key: b("/k"), range_end: b("") } },
            root,
          );
          const perms = (await c.auth.roleGet({ role: "r1" }, root)).perm.map((p: any) => [
            p.permType,
            s(p.key),
            s(p.range_end),
          ]);
          assert.deepEqual(perms, [["READWRITE", "/a", "/b"], ["WRITE", "/k", ""]]);
          await c.auth.userGrantRole({ user: "alice", role: "r1" }, root);
          before = await rev();
          await c.auth.userGrantRole({ user: "alice", role: "r1" }, root);
          assert.equal(await rev(), before, "granting a held role changes nothing");
          assert.deepEqual((await c.auth.userGet({ name: "alice" }, root)).roles, ["r1"]);
          assert.deepEqual((await c.auth.userList({}, root)).users, ["alice", "root"]);
          assert.deepEqual((await c.auth.roleList({}, root)).roles, ["r1"]);
          const rootPerm = await c.auth.roleGet({ role: "root" }, root).catch((e) => e);
          assert.equal(rootPerm.details, "etcdserver: role name not found");

          const failsWith = async (p: Promise<unknown>, code: number, text: string) =>
            await refuses(p, code, `etcdserver: ${text}`);
          await failsWith(
            c.auth.userAdd({ name: "alice", password: "x" }, root),
            9,
            "user name already exists",
          );
          await failsWith(
            c.auth.userAdd({ name: "", password: "x" }, root),
            3,
            "user name is empty",
          );
          await failsWith(c.auth.roleAdd({ name: "" }, root), 3, "role name is empty");
          await failsWith(c.auth.roleAdd({ name: "r1" }, root), 9, "role name already exists");
          await failsWith(c.auth.roleGet({ role: "nope" }, root), 9, "role name not found");
          await failsWith(c.auth.userGet({ name: "nope" }, root), 9, "user name not found");
          await failsWith(
            c.auth.userGrantRole({ user: "alice", role: "nope" }, root),
            9,
            "role name not found",
          );
          await failsWith(
            c.auth.userRevokeRole({ name: "alice", role: "nope" }, root),
            9,
            "role is not granted to the user",
          );
          await failsWith(
            c.auth.roleRevokePermission({ role: "r1", key: b("/zz") }, root),
            9,
            "permission is not granted to the role",
          );
          await failsWith(
            c.auth.roleGrantPermission({ name: "r1" }, root),
            3,
            "permission not given",
          );
          await failsWith(c.auth.userDelete({ name: "root" }, root), 3, "invalid auth management");
          await failsWith(c.auth.roleDelete({ role: "root" }, root), 3, "invalid auth management");
          await failsWith(
            c.auth.userRevokeRole({ name: "root", role: "root" }, root),
            3,
            "invalid auth management",
          );

          // A user reads itself and its own roles, nothing more.
          const alice = md(await token(c, "alice", "apw"));
          assert.deepEqual((await c.auth.userGet({ name: "alice" }, alice)).roles, ["r1"]);
          assert.equal((await c.auth.roleGet({ role: "r1" }, alice)).perm.length, 2);
          await failsWith(
            c.auth.userGet({ name: "root" }, alice),
            PERMISSION_DENIED,
            "permission denied",
          );
          await failsWith(c.auth.roleList({}, alice), PERMISSION_DENIED, "permission denied");
          await failsWith(
            c.auth.userAdd({ name: "x", password: "x" }, alice),
            7,
            "permission denied",
          );
          await failsWith(c.auth.authStatus({}, alice), 7, "permission denied");

          // KV with the token; a token nobody issued is refused.
          await c.kv.put({ key: b("/a/1"), value: b("v") }, alice);
          // The edges of a range permission [/a, /b): its end is not in it.
          await c.kv.range({ key: b("/a"), range_end: b("/b") }, alice);
          await failsWith(
            c.kv.range({ key: b("/a"), range_end: b("/b\0") }, alice),
            7,
            "permission denied",
          );
          await failsWith(
            c.kv.range({ key: b("/"), range_end: b("/b") }, alice),
            7,
            "permission denied",
          );
          await failsWith(c.kv.put({ key: b("/b"), value: b("v") }, alice), 7, "permission denied");
          await c.kv.put({ key: b("/k"), value: b("v") }, alice);
          await failsWith(c.kv.range({ key: b("/k") }, alice), 7, "permission denied");
          await failsWith(c.kv.range({ key: b("/a/1") }, md("bogus.1")), 16, "invalid auth token");
          // prev_kv needs read as well as write.
          await failsWith(
            c.kv.put({ key: b("/k"), value: b("w"), prev_kv: true }, alice),
            7,
            "permission denied",
          );
          await failsWith(
            c.kv.deleteRange({ key: b("/k"), prev_kv: true }, alice),
            7,
            "permission denied",
          );

          // Leases: anyone may grant; revoking needs write on every attached key.
          const lease = (await c.lease.leaseGrant({ TTL: 60 }, alice)).ID;
          await c.kv.put({ key: b("/z"), value: b("v"), lease }, root);
          await failsWith(c.lease.leaseRevoke({ ID: lease }, alice), 7, "permission denied");
          await failsWith(
            c.kv.put({ key: b("/a/2"), value: b("v"), lease }, alice),
            7,
            "permission denied",
          );
          await failsWith(
            c.lease.leaseTimeToLive({ ID: lease, keys: true }, alice),
            7,
            "permission denied",
          );
          await c.lease.leaseRevoke({ ID: lease }, root);

          // Maintenance: status for anyone, the rest for root.
          await c.maintenance.status({}, alice);
          await failsWith(c.maintenance.defragment({}, alice), 7, "permission denied");
          await c.maintenance.defragment({}, root);

          // No-password users cannot log in with a password.
          await c.auth.userAdd({ name: "bob", password: "", options: { no_password: true } }, root);
          await failsWith(
            login(c, "bob", ""),
            3,
            "authentication failed, invalid user ID or password",
          );

          // A new password ends the old tokens.
          await c.auth.userChangePassword({ name: "alice", password: "apw2" }, root);
          await failsWith(
            c.kv.put({ key: b("/a/1"), value: b("v") }, alice),
            16,
            "invalid auth token",
          );
          const alice2 = md(await token(c, "alice", "apw2"));
          await c.kv.put({ key: b("/a/1"), value: b("v") }, alice2);

          // Deleting a role takes it from its users.
          await c.auth.roleDelete({ role: "r1" }, root);
          assert.deepEqual((await c.auth.userGet({ name: "alice" }, root)).roles, []);
          await failsWith(
            c.kv.put({ key: b("/a/1"), value: b("v") }, alice2),
            7,
            "permission denied",
          );
          await c.auth.userDelete({ name: "alice" }, root);
          await failsWith(
            c.kv.put({ key: b("/a/1"), value: b("v") }, alice2),
            16,
            "invalid auth token",
          );

          // Passwords are stored as bcrypt hashes of etcd's default cost, never in clear.
          const row = await k.kine.backend.range(plainRange(AUTH_KEY, ""));
          const stored = s(row.kvs[0].value);
          assert.match(stored, /"password":"\$2[aby]\$10\$/);
          assert.doesNotMatch(stored, /rootpw|apw2/);

          await c.auth.authDisable({}, root);
          assert.equal((await status()).enabled, false);
          await c.kv.put({ key: b("/anything"), value: b("v") });
        },
        {},
        backend,
      ),
  );

  Deno.test(
    name("watches: a forbidden range is refused, a revoked one is cancelled"),
    () =>
      withKine(
        async (k) => {
          const c = k.client;
          const { root } = await tenant(c);
          const alice = md(await token(c, "alice", "apw"));
          const w = new WatchClient(k.endpoint, true, alice);
          const anonymous = new WatchClient(k.endpoint, true);
          try {
            const denied = await w.watch({ key: "/u/", rangeEnd: "/u0" });
            assert.deepEqual([denied.watch_id, denied.canceled, denied.cancel_reason], [
              -1,
              true,
              `rpc error: code = PermissionDenied desc = ${DENIED}`,
            ]);
            const none = await anonymous.watch({ key: "/t/a" });
            assert.equal(
              none.cancel_reason,
              `rpc error: code = InvalidArgument desc = ${USER_EMPTY}`,
            );

            const created = await w.watch({ key: "/t/", rangeEnd: "/t0" });
            assert.equal(created.canceled, false);
            await c.kv.put({ key: b("/t/x"), value: b("1") }, root);
            await w.waitEvents(created.watch_id, 1);
            await c.auth.roleRevokePermission({
              role: "tenant",
              key: b("/t/"),
              range_end: b("/t0"),
            }, root);
            const ended = await w.waitFor((r) => r.canceled && r.watch_id === created.watch_id);
            assert.equal(
              ended.cancel_reason,
              `rpc error: code = PermissionDenied desc = ${DENIED}`,
            );
          } finally {
            await w.close();
            await anonymous.close();
          }
        },
        FAST,
        backend,
      ),
  );
}

for (const backend of SHARED) {
  Deno.test(`[${backend.name}] auth: a restart keeps it; a second server on the database follows it`, async () => {
    const a = await startTestKine(FAST, backend);
    const endpoint = backend.endpoint(a.dir);
    let b2: TestKine | undefined;
    try {
      const { root } = await tenant(a.client);
      b2 = await startTestKine({ ...FAST, endpoint }, backend);
      // The second server sees users, roles and the switch, and issues its own tokens.
      const onB = md(await token(b2.client, "alice", "apw"));
      await b2.client.kv.put({ key: b("/t/b"), value: b("1") }, onB);
      await refuses(
        b2.client.kv.put({ key: b("/u/b"), value: b("1") }, onB),
        PERMISSION_DENIED,
        DENIED,
      );
      const watch = new WatchClient(b2.endpoint, true, onB);
      const watched = await watch.watch({ key: "/t/", rangeEnd: "/t0" });
      assert.equal(watched.canceled, false);
      // A change through one takes effect on the other within the poll interval.
      await a.client.auth.roleRevokePermission({
        role: "tenant",
        key: b("/t/"),
        range_end: b("/t0"),
      }, root);
      const deadline = Date.now() + 5000;
      for (;;) {
        const err = await rejected(b2.client.kv.put({ key: b("/t/b"), value: b("2") }, onB)).catch(
          () => undefined,
        );
        if (err?.code === PERMISSION_DENIED) break;
        assert.ok(Date.now() < deadline, "the second server never saw the revoked permission");
        await sleep(100);
      }
      // and its watch on the revoked range is cancelled there.
      const ended = await watch.waitFor((r) => r.canceled && r.watch_id === watched.watch_id);
      assert.equal(ended.cancel_reason, `rpc error: code = PermissionDenied desc = ${DENIED}`);
      await watch.close();
      const revA = (await a.client.auth.authStatus({}, root)).authRevision;
      const rootB = md(await token(b2.client, "root", "rootpw"));
      assert.equal((await b2.client.auth.authStatus({}, rootB)).authRevision, revA);
      await b2.close();
      b2 = undefined;
      await a.kine.close();
      // Restart on the same database: still enabled, same users.
      const again = await startKine({
        listenAddress: "127.0.0.1:0",
        endpoint,
        metricsBindAddress: "0",
        ...FAST,
      }, silentLogger);
      const c = connect(again.url.replace(/^https?:\/\//, ""));
      try {
        await refuses(c.kv.range({ key: b("/t/a") }), INVALID_ARGUMENT, USER_EMPTY);
        const t = md(await token(c, "root", "rootpw"));
        assert.deepEqual((await c.auth.userList({}, t)).users, ["alice", "root"]);
        assert.equal((await c.auth.authStatus({}, t)).authRevision, revA);
      } finally {
        c.close();
        await again.close();
      }
    } finally {
      await b2?.close();
      await a.close();
    }
  });
}

Deno.test("auth: a simple token expires after --auth-token-ttl without use", () =>
  withKine(async (k) => {
    const c = k.client;
    await tenant(c);
    const alice = md(await token(c, "alice", "apw"));
    await sleep(600);
    await c.kv.put({ key: b("/t/a"), value: b("1") }, alice); // use keeps it alive
    await sleep(600);
    await c.kv.put({ key: b("/t/a"), value: b("2") }, alice);
    await sleep(1600);
    await refuses(
      c.kv.put({ key: b("/t/a"), value: b("3") }, alice),
      UNAUTHENTICATED,
      "etcdserver: invalid auth token",
    );
  }, { ...FAST, authTokenTtl: 1 }));

Deno.test("auth: JWT tokens, signed with a key pair made here, verified by a second server", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-jwt-" });
  const pair = (file: string) => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    Deno.writeTextFileSync(
      `${dir}/${file}.pub`,
      publicKey.export({ type: "spki", format: "pem" }) as string,
    );
    Deno.writeTextFileSync(
      `${dir}/${file}.key`,
      privateKey.export({ type: "pkcs8", format: "pem" }) as string,
    );
    return { pub: `${dir}/${file}.pub`, key: `${dir}/${file}.key` };
  };
  const keys = pair("jwt");
  const other = pair("other");
  const a = await startTestKine({
    ...FAST,
    authToken: `jwt,pub-key=${keys.pub},priv-key=${keys.key},sign-method=ES256,ttl=1m`,
  });
  let verifier: TestKine | undefined;
  try {
    const { root } = await tenant(a.client);
    const jwt = await token(a.client, "alice", "apw");
    const claims = jose.decodeJwt(jwt);
    assert.equal(claims.username, "alice");
    assert.equal(typeof claims.revision, "number");
    assert.ok(Number(claims.exp) * 1000 > Date.now() + 50_000, "ttl=1m");
    await jose.jwtVerify(jwt, await jose.importSPKI(Deno.readTextFileSync(keys.pub), "ES256"));
    await a.client.kv.put({ key: b("/t/a"), value: b("1") }, md(jwt));

    // Signed by a key the server does not trust: refused.
    const forged = await new jose.SignJWT({ username: "root", revision: claims.revision })
      .setProtectedHeader({ alg: "ES256" })
      .setExpirationTime("1m")
      .sign(await jose.importPKCS8(Deno.readTextFileSync(other.key), "ES256"));
    await refuses(
      a.client.kv.range({ key: b("/t/a") }, md(forged)),
      UNAUTHENTICATED,
      "etcdserver: invalid auth token",
    );

    // A server holding only the public key verifies the first one's tokens.
    verifier = await startTestKine({
      ...FAST,
      endpoint: `sqlite://${a.dir}/state.db`,
      authToken: `jwt,pub-key=${keys.pub},sign-method=ES256`,
    });
    assert.equal(
      s((await verifier.client.kv.range({ key: b("/t/a") }, md(jwt))).kvs[0].value),
      "1",
    );

    // After any auth change, a token of an older auth revision is refused until renewed.
    await a.client.auth.roleAdd({ name: "other" }, root);
    await refuses(
      a.client.kv.range({ key: b("/t/a") }, md(jwt)),
      INVALID_ARGUMENT,
      "etcdserver: revision of auth store is old",
    );
    const renewed = await token(a.client, "alice", "apw");
    await a.client.kv.range({ key: b("/t/a") }, md(renewed));
  } finally {
    await verifier?.close();
    await a.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("auth: a client certificate's common name is the user with --client-cert-auth", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-cn-" });
  const certs = await makeCerts(dir, "alice");
  const tls = {
    ...FAST,
    serverCertFile: certs.serverCert,
    serverKeyFile: certs.serverKey,
    trustedCaFile: certs.ca,
  };
  const k = await startTestKine({ ...tls, clientCertAuth: true });
  const plain = await startTestKine({ ...tls, endpoint: `sqlite://${k.dir}/state.db` });
  const ctl = (target: TestKine, args: string[]) =>
    etcdctl(`https://${target.endpoint}`, [
      `--cacert=${certs.ca}`,
      `--cert=${certs.clientCert}`,
      `--key=${certs.clientKey}`,
      ...args,
    ]);
  try {
    for (
      const args of [
        ["user", "add", "root:rootpw"],
        ["user", "grant-role", "root", "root"],
        ["role", "add", "tenant"],
        ["role", "grant-permission", "--prefix", "tenant", "readwrite", "/t/"],
        ["user", "add", "alice", "--no-password"],
        ["user", "grant-role", "alice", "tenant"],
        ["auth", "enable"],
      ]
    ) {
      const r = await ctl(k, args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    }
    // No token: the certificate speaks for alice, within her prefix only.
    let r = await ctl(k, ["put", "/t/a", "1"]);
    assert.equal(r.code, 0, r.stderr);
    r = await ctl(k, ["put", "/u/a", "1"]);
    assert.match(r.stderr, /Error: etcdserver: permission denied/);
    // A token wins over the certificate.
    r = await ctl(k, ["--user=root:rootpw", "put", "/u/a", "1"]);
    assert.equal(r.code, 0, r.stderr);
    // Without --client-cert-auth the certificate names nobody.
    for (let i = 0;; i++) {
      r = await ctl(plain, ["put", "/t/b", "1"]);
      if (/user name is empty/.test(r.stderr) || i === 20) break;
      await sleep(100); // the second server catches up with `auth enable`
    }
    assert.match(r.stderr, /Error: etcdserver: user name is empty/);
  } finally {
    await plain.close();
    await k.close();
    await Deno.remove(dir, { recursive: true });
  }
});
