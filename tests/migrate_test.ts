/**
 * `kine migrate` between kine datastores: every pair of backends of the
 * conformance matrix (memory left out: nothing outlives the process), a
 * non-empty target refused, and a copy killed with SIGKILL then resumed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { silentLogger } from "../lib/log/mod.ts";
import {
  type Backend,
  type Event,
  FROM_KEY,
  type KeyValue,
  plainRange,
  type Status,
} from "../lib/backend/types.ts";
import { AUTH_KEY } from "../lib/auth/store.ts";
import { migrate, type MigrateOptions, parseMigrateArgs } from "../lib/migrate/mod.ts";
import type { ProgressSink } from "../lib/migrate/progress.ts";
import { BACKENDS, PG_URL, POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";

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

Deno.test("kine migrate killed mid-copy is finished by --resume", async () => {
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
    const args = ["run", "-A", "main.ts", "migrate", "--from", src, "--to", dst, "--batch-size"];
    const child = new Deno.Command(Deno.execPath(), {
      args: [...args, "200"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const db = dst.replace(/\?.*/, "").split("/").pop()!;
    const sql = postgres(`${PG_URL}/${db}`, { max: 1, onnotice: () => {} });
    try {
      // Killed once some batches landed, well before the end.
      for (let waited = 0;; waited += 20) {
        assert.ok(waited < 60_000, "the copy never started");
        const rows = await sql`SELECT COUNT(*)::int AS n FROM kine`.catch(() => [{ n: 0 }]);
        if (rows[0].n > 0) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      await child.status;
      const [{ n }] = await sql`SELECT COUNT(*)::int AS n FROM kine`;
      assert.ok(n > 0 && n < head, `rows after the kill: ${n} of ${head}`);
      assert.equal(n % 200, 0, "a batch is all or nothing");
    } finally {
      await sql.end();
    }
    const rerun = async (extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...args, "200", ...extra],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
    };
    const refused = await rerun([]);
    assert.equal(refused.code, 2);
    assert.match(refused.err, /holds an unfinished copy: add --resume/);
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
