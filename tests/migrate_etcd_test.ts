// Tests for `kine migrate` with etcd as source or target: revisions, leases, auth, TLS, --follow.

import assert from "node:assert/strict";
import { silentLogger } from "../lib/log/mod.ts";
import { AUTH_KEY } from "../lib/auth/store.ts";
import { type AuthState, decodeState } from "../lib/auth/state.ts";
import { PasswordPool } from "../lib/auth/passwords.ts";
import { migrate } from "../lib/migrate/mod.ts";
import { b, connect, s } from "./helpers/client.ts";
import { freePort } from "./helpers/proc.ts";
import { makeCerts } from "./helpers/certs.ts";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine } from "./helpers/kine.ts";
import { WatchClient } from "./helpers/watch.ts";
import { leaseId } from "../lib/migrate/etcd_client.ts";
import { at, enc, fillSource, open, options, put, QUIET } from "./helpers/migrate.ts";

async function withEtcd(
  fn: (target: string, dir: string) => Promise<void>,
  tls = false,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kine-mig-etcd-" });
  const [client, peer] = [freePort(), freePort()];
  const scheme = tls ? "https" : "http";
  if (tls) await makeCerts(dir);
  const child = new Deno.Command("etcd", {
    args: [
      `--data-dir=${dir}/etcd`,
      `--listen-client-urls=${scheme}://127.0.0.1:${client}`,
      `--advertise-client-urls=${scheme}://127.0.0.1:${client}`,
      `--listen-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
      `--initial-cluster=default=http://127.0.0.1:${peer}`,
      ...(tls
        ? [
          `--cert-file=${dir}/server.crt`,
          `--key-file=${dir}/server.key`,
          `--trusted-ca-file=${dir}/ca.crt`,
          "--client-cert-auth",
        ]
        : []),
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  // With TLS by name: Deno's TLS takes no IP address as the server name.
  const target = `${tls ? "localhost" : "127.0.0.1"}:${client}`;
  const alive = setInterval(() => {}, 1000);
  try {
    const c = tls ? connect(target, etcdTls(dir)) : connect(target);
    try {
      for (let waited = 0;; waited += 100) {
        try {
          await c.kv.range({ key: b("x") });
          break;
        } catch (err) {
          if (waited > 20_000) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      c.close();
    }
    await fn(target, dir);
  } finally {
    clearInterval(alive);
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** gRPC credentials of the test PKI's client. */
function etcdTls(dir: string): grpc.ChannelCredentials {
  const read = (f: string) => Buffer.from(Deno.readFileSync(`${dir}/${f}`));
  return grpc.credentials.createSsl(read("ca.crt"), read("client.key"), read("client.crt"));
}

Deno.test("kine migrate --from etcd: revisions, versions, leases, compaction; one txn's keys moved", async () => {
  await withEtcd(async (target, dir) => {
    const c = connect(target);
    const etcdKvs = async (revision = 0) =>
      (await c.kv.range({ key: b("\x01"), range_end: b("\0"), revision })).kvs.map((
        kv: any,
      ) => ({
        key: s(kv.key),
        value: s(kv.value),
        createRevision: kv.create_revision,
        modRevision: kv.mod_revision,
        version: kv.version,
        lease: s(kv.key) === "/registry/leased" ? lease : 0,
      }));
    let head: number, compact: number, lease: number;
    let before: Awaited<ReturnType<typeof etcdKvs>>;
    try {
      for (let i = 0; i < 10; i++) await c.kv.put({ key: b(`/registry/a${i}`), value: b(`v${i}`) });
      for (let i = 0; i < 5; i++) await c.kv.put({ key: b(`/registry/a${i}`), value: b(`w${i}`) });
      await c.kv.deleteRange({ key: b("/registry/a9") });
      compact = (await c.kv.put({ key: b("/registry/a0"), value: b("x") })).header.revision;
      await c.kv.compact({ revision: compact });
      // One txn: three keys at one revision.
      await c.kv.txn({
        success: ["t1", "t2", "t3"].map((k) => ({
          request_put: { key: b(`/registry/${k}`), value: b(k) },
        })),
      });
      // etcdctl: a lease ID takes 63 bits, more than a JavaScript number holds exactly.
      const granted = await etcdctl(target, ["lease", "grant", "300"]);
      const hex = /lease ([0-9a-f]+) granted/.exec(granted.stdout)![1];
      lease = leaseId(BigInt(`0x${hex}`).toString());
      assert.equal(
        (await etcdctl(target, ["put", "/registry/leased", "l", `--lease=${hex}`])).code,
        0,
      );
      // The head is a delete.
      head = (await c.kv.deleteRange({ key: b("/registry/a8") })).header.revision;
      before = await etcdKvs();
    } finally {
      c.close();
    }
    const dst = `sqlite://${dir}/target.db`;
    const output: string[] = [];
    const log = console.log;
    console.log = (line: string) => output.push(line);
    let code: number;
    try {
      code = await migrate(
        options(["--from", `etcd://${target}`, "--to", dst]),
        silentLogger,
        QUIET,
        () => false,
      );
    } finally {
      console.log = log;
    }
    assert.equal(code, 0, output.join("\n"));
    assert.match(
      output.join("\n"),
      /2 keys shared an etcd revision .*\/registry\/t2 .*\/registry\/t3/,
    );
    const k = await open(dst);
    try {
      const status = await k.status();
      // Two keys moved above etcd's head, then kine's /registry/health, added at its first start.
      assert.equal(status.revision, head + 3);
      assert.equal(
        (await at(k, 0)).find((kv) => kv.key === "/registry/health")?.modRevision,
        head + 3,
      );
      // Only the live keys were copied: history below etcd's head reads as compacted.
      assert.ok(compact < head);
      assert.equal(status.compactRevision, head);
      const moved = new Map([["/registry/t2", head + 1], ["/registry/t3", head + 2]]);
      const expected = before.map((kv: any) =>
        moved.has(kv.key)
          ? { ...kv, createRevision: moved.get(kv.key), modRevision: moved.get(kv.key) }
          : kv
      );
      assert.deepEqual((await at(k, 0)).filter((kv) => kv.key !== "/registry/health"), expected);
      const [record] = await k.leaseRecords(lease);
      assert.equal(record?.ttl, 300);
      assert.ok(
        record.expiresAt > Date.now() + 250_000 && record.expiresAt <= Date.now() + 300_000,
      );
      // kine goes on from etcd's revisions: the next write is the next revision.
      assert.equal((await put(k, "/registry/next", "n")).revision, head + 4);
    } finally {
      await k.close();
    }
  });
});
Deno.test("kine migrate --to etcd: the live keys and values, leases attached; a non-empty etcd refused", async () => {
  await withEtcd(async (target, dir) => {
    const src = `sqlite://${dir}/source.db`;
    const source = await open(src);
    let expected: { key: string; value: string }[];
    try {
      await fillSource(source);
      expected = (await at(source, 0)).filter((kv) => kv.key !== AUTH_KEY).map((kv) => ({
        key: kv.key,
        value: kv.value,
      }));
    } finally {
      await source.close();
    }
    const args = options(["--from", src, "--to", `etcd://${target}`]);
    assert.equal(await migrate(args, silentLogger, QUIET, () => false), 0);
    const c = connect(target);
    try {
      const r = await c.kv.range({ key: b("\x01"), range_end: b("\0") });
      assert.deepEqual(r.kvs.map((kv: any) => ({ key: s(kv.key), value: s(kv.value) })), expected);
      const leased = r.kvs.find((kv: any) => s(kv.key) === "/registry/leases/l");
      assert.notEqual(leased.lease, 0, "the key keeps a lease");
      const ttl = await etcdctl(target, ["lease", "list"]);
      assert.match(ttl.stdout, /found 1 leases/);
    } finally {
      c.close();
    }
    await assert.rejects(
      migrate(args, silentLogger, QUIET, () => false),
      /target etcd:\/\/.* is not empty/,
    );
  });
});

Deno.test("kine migrate --from etcd --follow applies etcd's writes with etcd's revisions", async () => {
  await withEtcd(async (target, dir) => {
    const c = connect(target);
    try {
      for (let i = 0; i < 20; i++) await c.kv.put({ key: b(`/registry/f${i}`), value: b(`v${i}`) });
      const dst = `sqlite://${dir}/target.db`;
      const copy = migrate(
        options(["--from", `etcd://${target}`, "--to", dst, "--follow", "--until-idle", "1500ms"]),
        silentLogger,
        QUIET,
        () => false,
      );
      for (let i = 0; i < 60; i++) {
        await c.kv.put({ key: b(`/registry/f${i % 25}`), value: b(`w${i}`) });
        if (i % 9 === 0) await c.kv.deleteRange({ key: b(`/registry/f${(i + 4) % 25}`) });
        await new Promise((r) => setTimeout(r, 10));
      }
      const r = await c.kv.range({ key: b("\x01"), range_end: b("\0") });
      const head = r.header.revision;
      assert.equal(await copy, 0);
      const k = await open(dst);
      try {
        assert.deepEqual(
          (await at(k, head)).filter((kv) => kv.key !== "/registry/health"),
          r.kvs.map((kv: any) => ({
            key: s(kv.key),
            value: s(kv.value),
            createRevision: kv.create_revision,
            modRevision: kv.mod_revision,
            version: kv.version,
            lease: 0,
          })),
        );
      } finally {
        await k.close();
      }
    } finally {
      c.close();
    }
  });
});

Deno.test("kine migrate --from etcds:// with a client certificate and a user, auth on", async () => {
  await withEtcd(async (target, dir) => {
    const tlsFlags = [
      `--cacert=${dir}/ca.crt`,
      `--cert=${dir}/client.crt`,
      `--key=${dir}/client.key`,
    ];
    const ctl = async (args: string[]) => {
      const r = await etcdctl(`https://${target}`, [...tlsFlags, ...args]);
      assert.equal(r.code, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
    };
    await ctl(["put", "/registry/secret", "s"]);
    await ctl(["user", "add", "root:rootpw"]);
    await ctl(["role", "add", "reader"]);
    await ctl(["role", "grant-permission", "reader", "read", "/registry/", "--prefix"]);
    await ctl(["role", "grant-permission", "reader", "readwrite", "/tmp/x"]);
    await ctl(["user", "add", "alice:alicepw"]);
    await ctl(["user", "add", "bob:bobpw"]);
    await ctl(["user", "grant-role", "alice", "reader"]);
    await ctl(["user", "grant-role", "bob", "reader"]);
    await ctl(["auth", "enable"]);
    const dst = `sqlite://${dir}/target.db`;
    await Deno.writeTextFile(`${dir}/passwords`, "# known\nalice:alicepw\n");
    const from = (user: string) =>
      options([
        "--from-user-password-file",
        `${dir}/passwords`,
        "--from",
        `etcds://${target}`,
        "--from-cacert",
        `${dir}/ca.crt`,
        "--from-cert",
        `${dir}/client.crt`,
        "--from-key",
        `${dir}/client.key`,
        "--from-user",
        user,
        "--to",
        dst,
      ]);
    await assert.rejects(
      migrate(from("root:wrong"), silentLogger, QUIET, () => false),
      /source etcds:\/\/localhost:\d+: .*authentication failed/,
    );
    const output: string[] = [];
    const log = console.log;
    console.log = (line: string) => output.push(line);
    try {
      assert.equal(await migrate(from("root:rootpw"), silentLogger, QUIET, () => false), 0);
    } finally {
      console.log = log;
    }
    assert.match(output.join("\n"), /auth enabled: 3 users and 2 roles copied/);
    assert.match(output.join("\n"), /users without a password .*: bob$/m);
    const k = await open(dst);
    let state: AuthState;
    try {
      const kvs = await at(k, 0);
      assert.deepEqual(kvs.filter((kv) => kv.key !== AUTH_KEY).map((kv) => [kv.key, kv.value]), [
        ["/registry/health", '{"health":"true"}'],
        ["/registry/secret", "s"],
      ]);
      state = decodeState(enc.encode(kvs.find((kv) => kv.key === AUTH_KEY)!.value));
    } finally {
      await k.close();
    }
    assert.equal(state.enabled, true);
    assert.deepEqual(
      [...state.users.values()].map((u) => [u.name, u.roles, u.noPassword]),
      [["alice", ["reader"], false], ["bob", ["reader"], false], ["root", ["root"], false]],
    );
    assert.deepEqual(state.roles.get("reader")?.perms.map((p) => [p.type, s(p.key), s(p.end)]), [
      ["READ", "/registry/", "/registry0"],
      ["READWRITE", "/tmp/x", ""],
    ]);
    // Passwords known to the copy work; bob's is unknown, so no password lets him in.
    const pool = new PasswordPool();
    try {
      const check = (name: string, pw: string) =>
        pool.check(enc.encode(pw), state.users.get(name)!.password);
      assert.equal(await check("root", "rootpw"), true);
      assert.equal(await check("alice", "alicepw"), true);
      assert.equal(await check("alice", "bobpw"), false);
      assert.equal(await check("bob", "bobpw"), false);
    } finally {
      pool.close();
    }
  }, true);
});

async function watched(endpoint: string, from: number, upTo: number) {
  const w = new WatchClient(endpoint);
  try {
    w.create({ key: "/registry/", rangeEnd: "/registry0", startRevision: from, prevKv: true });
    const all: any[] = [];
    await w.waitFor(
      (r) => {
        all.push(...r.events);
        return r.canceled || all.some((e) => Number(e.kv.mod_revision) >= upTo);
      },
      10_000,
    );
    const kv = (kv: any) =>
      kv && {
        key: s(kv.key),
        value: s(kv.value),
        create: Number(kv.create_revision),
        mod: Number(kv.mod_revision),
        version: Number(kv.version),
      };
    return all.filter((e) => Number(e.kv.mod_revision) <= upTo)
      .map((e) => ({ type: e.type, kv: kv(e.kv), prev: kv(e.prev_kv) }));
  } finally {
    await w.close();
  }
}

Deno.test("kine migrate --from etcd --follow: a watch on kine from a resourceVersion read on etcd gets etcd's events", async () => {
  await withEtcd(async (target, dir) => {
    const c = connect(target);
    const dst = `sqlite://${dir}/target.db`;
    let rv = 0;
    let head = 0;
    try {
      for (let i = 0; i < 10; i++) await c.kv.put({ key: b(`/registry/w${i}`), value: b(`v${i}`) });
      const log = console.log;
      let following!: () => void;
      const ready = new Promise<void>((r) => following = r);
      console.log = (line: string) => {
        if (line.startsWith("following")) following();
      };
      try {
        const copy = migrate(
          options([
            "--from",
            `etcd://${target}`,
            "--to",
            dst,
            "--follow",
            "--until-idle",
            "1500ms",
          ]),
          silentLogger,
          QUIET,
          () => false,
        );
        await ready;
        // A list's resourceVersion, as an informer reads it before it watches.
        rv = (await c.kv.range({ key: b("/registry/"), range_end: b("/registry0") })).header
          .revision;
        for (let i = 0; i < 30; i++) {
          head = (await c.kv.put({ key: b(`/registry/w${i % 12}`), value: b(`u${i}`) })).header
            .revision;
          if (i % 5 === 0) {
            head = (await c.kv.deleteRange({ key: b(`/registry/w${(i + 3) % 12}`) })).header
              .revision;
          }
        }
        assert.equal(await copy, 0);
      } finally {
        console.log = log;
      }
    } finally {
      c.close();
    }
    const k = await startTestKine({ endpoint: dst });
    try {
      const theirs = await watched(target, rv + 1, head);
      assert.ok(theirs.length >= 36);
      assert.deepEqual(await watched(k.endpoint, rv + 1, head), theirs);
      // Below the copy's revision kine has no history: the watch is refused as compacted.
      const w = new WatchClient(k.endpoint);
      try {
        w.create({ key: "/registry/", rangeEnd: "/registry0", startRevision: 2 });
        const r = await w.waitFor((r) => r.canceled || r.compact_revision > 0);
        assert.ok(r.compact_revision > 2);
      } finally {
        await w.close();
      }
    } finally {
      await k.close();
    }
  });
});
