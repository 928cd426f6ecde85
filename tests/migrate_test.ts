/**
 * `kine migrate` between kine datastores: every pair of backends of the
 * conformance matrix (memory left out: nothing outlives the process), a
 * non-empty target refused, and a copy killed with SIGKILL then resumed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import mysql from "mysql2/promise";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { silentLogger } from "../lib/log/mod.ts";
import {
  type Backend,
  type Event,
  FROM_KEY,
  type KeyValue,
  type LogRecord,
  plainRange,
  type Status,
} from "../lib/backend/types.ts";
import { AUTH_KEY } from "../lib/auth/store.ts";
import { type AuthState, decodeState } from "../lib/auth/state.ts";
import { PasswordPool } from "../lib/auth/passwords.ts";
import { keyFromText } from "../lib/backend/keys.ts";
import { migrate, type MigrateOptions, parseMigrateArgs } from "../lib/migrate/mod.ts";
import { Progress, type ProgressSink } from "../lib/migrate/progress.ts";
import { b, connect, s } from "./helpers/client.ts";
import { freePort } from "./helpers/proc.ts";
import { makeCerts } from "./helpers/certs.ts";
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine } from "./helpers/kine.ts";
import { WatchClient } from "./helpers/watch.ts";
import { leaseId } from "../lib/migrate/etcd_client.ts";
import {
  BACKENDS,
  MYSQL,
  NATS,
  PG_URL,
  POSTGRES,
  SQLITE,
  type TestBackend,
} from "./helpers/backends.ts";
import { type Importer, openImporter } from "../lib/backend/import.ts";

const enc = new TextEncoder();
const QUIET: ProgressSink = { write: () => {}, isTerminal: false };
const STORES = BACKENDS.filter((b) => b.name !== "memory");

async function open(endpoint: string): Promise<Backend> {
  const { backend } = await openBackend(backendOptions(
    { ...defaultConfig(), endpoint, compactMinRetain: 0 },
    silentLogger,
  ));
  await backend.start();
  return backend;
}

function put(backend: Backend, key: string, value: string, lease = 0) {
  return backend.txn({
    compare: [],
    success: [{
      type: "put",
      key,
      value: enc.encode(value),
      lease,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    }],
    failure: [],
  });
}

function del(backend: Backend, key: string) {
  return backend.txn({
    compare: [],
    success: [{ type: "delete", key, end: "", prevKv: false }],
    failure: [],
  });
}

/** History with updates, deletes, a re-create, a lease, the auth row and a compaction. */
async function fillSource(backend: Backend): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 12; i++) {
      await put(backend, `/registry/pods/p${i}`, `v${round}-${"x".repeat(i * 7)}`);
    }
  }
  for (let i = 0; i < 4; i++) await del(backend, `/registry/pods/p${i}`);
  await put(backend, "/registry/pods/p1", "again");
  const lease = 7_000_000_001;
  await backend.createLease({ id: lease, ttl: 600, expiresAt: Date.now() + 600_000 });
  await put(backend, "/registry/leases/l", "held", lease);
  await put(backend, AUTH_KEY, '{"enabled":false}');
  await backend.compact(backend.currentRevision() - 10);
  for (let i = 4; i < 8; i++) await put(backend, `/registry/pods/p${i}`, "after compaction");
}

/** A KeyValue with its value as text (drivers hand out Buffers or Uint8Arrays). */
function plain(kv: KeyValue) {
  return { ...kv, value: new TextDecoder().decode(kv.value) };
}

/**
 * Every live key at a revision, as a client would see them. From `\x01`, not `\0`: on MySQL
 * (a PAD SPACE collation) a range from `\0` misses keys below a space, as the auth key is.
 */
async function at(backend: Backend, revision: number) {
  const r = await backend.range({ ...plainRange("\x01", FROM_KEY), revision });
  return r.kvs.map(plain);
}

/** The events a watch from `from` receives up to `upTo`. */
async function history(backend: Backend, from: number, upTo: number) {
  const events: Event[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const timer = setTimeout(() => done(), 10_000);
  const w = await backend.watch("\x01", FROM_KEY, from, (batch) => {
    events.push(...batch);
    if (events.at(-1)!.kv.modRevision >= upTo) done();
  });
  await finished;
  clearTimeout(timer);
  w.cancel();
  return events.filter((e) => e.kv.modRevision <= upTo).map((e) => ({
    type: e.type,
    kv: plain(e.kv),
    prevKv: e.prevKv && plain(e.prevKv),
  }));
}

async function withStores(
  pair: [TestBackend, TestBackend],
  fn: (src: string, dst: string) => Promise<void>,
) {
  const dirs = [
    await Deno.makeTempDir({ prefix: "kine-mig-" }),
    await Deno.makeTempDir({
      prefix: "kine-mig-",
    }),
  ];
  // kine's own timers are unref'd (they never hold a server open): this one keeps the test alive.
  const alive = setInterval(() => {}, 1000);
  try {
    await fn(pair[0].endpoint(dirs[0]), pair[1].endpoint(dirs[1]));
  } finally {
    clearInterval(alive);
    await pair[0].cleanup?.(dirs[0]);
    await pair[1].cleanup?.(dirs[1]);
  }
}

function options(args: string[]): MigrateOptions {
  const parsed = parseMigrateArgs(args);
  if (parsed.kind !== "options") throw new Error(`bad flags: ${args.join(" ")}`);
  return parsed.options;
}

Deno.test("kine migrate copies every revision between every pair of backends", async (t) => {
  for (const from of STORES) {
    for (const to of STORES) {
      await t.step(`${from.name} -> ${to.name}`, async () => {
        await withStores([from, to], async (src, dst) => {
          const source = await open(src);
          let head: number, status: Status;
          try {
            await fillSource(source);
            head = await source.latestRevision();
            status = await source.status();
          } finally {
            await source.close();
          }
          const code = await migrate(
            options(["--from", src, "--to", dst]),
            silentLogger,
            QUIET,
            () => false,
          );
          assert.equal(code, 0);
          const [a, b] = [await open(src), await open(dst)];
          try {
            const compact = status.compactRevision;
            assert.equal((await b.status()).compactRevision >= compact, true);
            for (let rev = Math.max(compact, 1); rev <= head; rev++) {
              assert.deepEqual(await at(b, rev), await at(a, rev), `at revision ${rev}`);
            }
            assert.deepEqual(
              await history(b, compact + 1, head),
              await history(a, compact + 1, head),
            );
            assert.deepEqual(
              (await b.leaseRecords()).map((l) => l.id),
              (await a.leaseRecords()).map((l) => l.id),
            );
            // The copy is a working store: a write lands above the copied revisions.
            const next = await put(b, "/registry/pods/new", "v");
            assert.ok(next.revision > head);
          } finally {
            await a.close();
            await b.close();
          }
        });
      });
    }
  }
});

Deno.test("kine migrate refuses a target that holds data, before writing anything", async () => {
  await withStores([SQLITE, SQLITE], async (src, dst) => {
    const source = await open(src);
    await put(source, "/a", "1");
    await source.close();
    const target = await open(dst);
    await put(target, "/b", "2");
    const before = await target.latestRevision();
    await target.close();
    await assert.rejects(
      migrate(options(["--from", src, "--to", dst]), silentLogger, QUIET, () => false),
      /target sqlite:\/\/.* is not empty \(3 rows\)/,
    );
    const again = await open(dst);
    assert.equal(await again.latestRevision(), before);
    assert.deepEqual((await at(again, 0)).map((kv) => kv.key), ["/b", "/registry/health"]);
    await again.close();
  });
});

Deno.test("kine migrate stopped by Ctrl-C, then killed with SIGKILL, is finished by --resume", async () => {
  await withStores([SQLITE, POSTGRES], async (src, dst) => {
    const source = await open(src);
    const value = "x".repeat(512);
    for (let i = 0; i < 300; i++) {
      await source.txn({
        compare: [],
        success: Array.from({ length: 100 }, (_, j) => ({
          type: "put" as const,
          key: `/registry/k${j}/${i % 50}`,
          value: enc.encode(value + i),
          lease: 0,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        })),
        failure: [],
      });
    }
    const head = await source.latestRevision();
    await source.close();
    const args = ["run", "-A", "main.ts", "migrate", "--from", src, "--to", dst];
    const db = dst.replace(/\?.*/, "").split("/").pop()!;
    const sql = postgres(`${PG_URL}/${db}`, { max: 1, onnotice: () => {} });
    const count = async () =>
      (await sql`SELECT COUNT(*)::int AS n FROM kine`.catch(() => [{ n: 0 }]))[0].n as number;
    /** Runs the command, and sends `signal` once the target holds more than `above` rows. */
    const interrupt = async (extra: string[], signal: Deno.Signal, above: number) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [...args, "--batch-size", "200", ...extra],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      for (let waited = 0; (await count()) <= above; waited += 20) {
        assert.ok(waited < 60_000, "the copy made no progress");
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill(signal);
      const out = await child.output();
      const n = await count();
      assert.ok(n > above && n < head, `rows after ${signal}: ${n} of ${head}`);
      assert.equal(n % 200, 0, "a batch is all or nothing");
      return { code: out.code, out: new TextDecoder().decode(out.stdout), rows: n };
    };
    const rerun = async (extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...args, ...extra],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
    };
    try {
      const stopped = await interrupt([], "SIGINT", 0);
      assert.equal(stopped.code, 130);
      assert.match(stopped.out, /interrupted at revision \d+: run the same command with --resume/);
      const refused = await rerun([]);
      assert.equal(refused.code, 2);
      assert.match(refused.err, /holds an unfinished copy: add --resume/);
      await interrupt(["--resume"], "SIGKILL", stopped.rows);
    } finally {
      await sql.end();
    }
    const resumed = await rerun(["--resume"]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.match(resumed.out, /\(resumed\)/);
    assert.match(resumed.out, new RegExp(`digest at revision ${head}: .*: equal`));
    const a = await open(src);
    const b = await open(dst);
    try {
      assert.deepEqual(await at(b, head), await at(a, head));
      assert.deepEqual(await at(b, head - 5000), await at(a, head - 5000));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("kine migrate --follow applies the source's writes made during and after the copy", async () => {
  await withStores([SQLITE, POSTGRES], async (src, dst) => {
    const source = await open(src);
    await fillSource(source);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing || i < 50; i++) {
        await put(source, `/registry/live/k${i % 20}`, `w${i}`);
        if (i % 7 === 0) await del(source, `/registry/live/k${(i + 3) % 20}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const copy = migrate(
      options(["--from", src, "--to", dst, "--follow", "--until-idle", "1500ms"]),
      silentLogger,
      QUIET,
      () => false,
    );
    await new Promise((r) => setTimeout(r, 1000));
    writing = false;
    await writer;
    const head = await source.latestRevision();
    assert.equal(await copy, 0);
    const b = await open(dst);
    try {
      assert.equal(await b.latestRevision(), head);
      assert.deepEqual(await at(b, head), await at(source, head));
      const { compactRevision } = await source.status();
      assert.deepEqual(
        await history(b, compactRevision + 1, head),
        await history(source, compactRevision + 1, head),
      );
    } finally {
      await b.close();
      await source.close();
    }
  });
});

/** A private etcd 3.4 on loopback ports; `target` is `127.0.0.1:<port>`; with `tls`, mTLS on. */
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

Deno.test("kine migrate names an unreachable source in one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-mig-" });
  try {
    await assert.rejects(
      migrate(
        options(["--from", `etcd://127.0.0.1:${freePort()}`, "--to", `sqlite://${dir}/t.db`]),
        silentLogger,
        QUIET,
        () => false,
      ),
      (err: Error) =>
        /^source etcd:\/\/127\.0\.0\.1:\d+: /.test(err.message) && !err.message.includes("\n"),
    );
    const k = await open(`sqlite://${dir}/t.db`);
    assert.deepEqual((await at(k, 0)).map((kv) => kv.key), ["/registry/health"]);
    await k.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
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

Deno.test("kine migrate's progress: a bar with rows/s and ETA on a terminal, plain lines elsewhere", () => {
  const lines: string[] = [];
  const bar = new Progress({ write: (t) => lines.push(t), isTerminal: true }, 0, 1000);
  bar.add(250, 250);
  bar.done(1000);
  assert.match(
    lines[0],
    /^\r\[#{8} {22}\] 25\.0% 250 rows, revision 250\/1000, \d+ rows\/s, ETA \d+s/,
  );
  assert.equal(lines.at(-1)!.endsWith("\n"), true);
  const plain: string[] = [];
  new Progress({ write: (t) => plain.push(t), isTerminal: false }, 0, 1000).add(10, 10);
  assert.match(plain[0], /^copy: 10 rows, revision 10\/1000, \d+ rows\/s, ETA \d+s\n$/);
});

Deno.test("kine migrate's flags: one-line errors naming the flag, exit status 2", async () => {
  const bad = (args: string[]) => {
    const r = parseMigrateArgs(args);
    return r.kind === "error" ? r.message : r.kind;
  };
  assert.equal(bad(["--from", "sqlite://a"]), "--to is required");
  assert.equal(
    bad(["--from", "a", "--to", "b", "--until-idle", "5s"]),
    "--until-idle needs --follow",
  );
  assert.equal(
    bad(["--from", "a", "--to", "b", "--batch-size", "0"]).includes("--batch-size"),
    true,
  );
  assert.equal(bad(["--from", "a", "--to", "b", "--frobnicate"]), "unknown flag: --frobnicate");
  assert.equal(bad(["--help"]), "help");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "migrate", "--from", "sqlite://x.db"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(new TextDecoder().decode(out.stderr), "kine migrate: --to is required\n");
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

Deno.test("kine migrate names a key the target cannot store before writing anything", async () => {
  await withStores([SQLITE, MYSQL], async (src, dst) => {
    const source = await open(src);
    try {
      await put(source, "/registry/a", "1");
      await put(source, keyFromText("/registry/é"), "2"); // keys are bytes: é is C3 A9
    } finally {
      await source.close();
    }
    await assert.rejects(
      migrate(options(["--from", src, "--to", dst]), silentLogger, QUIET, () => false),
      /the target cannot store key "\/registry\/é" \(revision 4\): .*ASCII/,
    );
    const db = dst.split("/").pop()!;
    const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: db });
    try {
      const [rows] = await conn.query("SELECT COUNT(*) AS n FROM kine");
      assert.equal((rows as { n: number }[])[0].n, 0);
    } finally {
      await conn.end();
    }
  });
});

/** The events a watch from `from` with previous values gets, up to revision `upTo`. */
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

/** A log row creating `name` at revision `id`, for an importer. */
function row(id: number, name: string): LogRecord {
  return {
    id,
    name,
    created: true,
    deleted: false,
    createRevision: 0,
    prevRevision: 0,
    lease: 0,
    value: enc.encode(name),
    oldValue: null,
    version: 1,
  };
}

/** An importer on `endpoint`, closed after `fn`. */
async function withImporter(endpoint: string, fn: (importer: Importer) => Promise<void>) {
  const importer = await openImporter(
    backendOptions({ ...defaultConfig(), endpoint }, silentLogger),
  );
  try {
    await fn(importer);
  } finally {
    await importer.close();
  }
}

Deno.test("kine migrate into PostgreSQL: a batch the server refuses mid-COPY fails whole", async () => {
  await withStores([POSTGRES, POSTGRES], async (_src, dst) => {
    await withImporter(dst, async (importer) => {
      const { head } = await importer.state();
      await importer.importRows([row(head + 1, "/a"), row(head + 2, "/b")]);
      // The second row repeats a revision: the primary key refuses it after the first was sent.
      await assert.rejects(
        importer.importRows([row(head + 3, "/c"), row(head + 2, "/d")]),
        /COPY refused/,
      );
      assert.deepEqual(await importer.state(), { rows: head + 2, head: head + 2, marker: null });
      await importer.importRows([row(head + 3, "/c")]);
      assert.equal((await importer.state()).head, head + 3);
    });
  });
});

Deno.test("kine migrate into NATS: a row JetStream refuses (another writer took its sequence) fails the batch", async () => {
  await withStores([NATS, NATS], async (_src, dst) => {
    await withImporter(dst, async (importer) => {
      const { head } = await importer.state();
      await importer.importRows([row(head + 1, "/a"), row(head + 2, "/b")]);
      // Another writer appends: the importer's next expected sequence is taken.
      const other = await open(dst);
      const taken = (await put(other, "/other", "x")).revision;
      await other.close();
      await assert.rejects(
        importer.importRows([row(head + 3, "/c"), row(head + 4, "/d")]),
        /JetStream: wrong last sequence/,
      );
      // Neither row landed: the stream ends at the other writer's message.
      assert.equal((await importer.state()).head, taken);
    });
  });
});
