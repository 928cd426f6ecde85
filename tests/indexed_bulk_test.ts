/**
 * Bulk loads whose rows kine computes from its key index
 * (`logstructured/indexed_bulk.ts`, `sql/bulk_known.ts`) write exactly the
 * rows and watch events of loads that read each key's row from the store; and
 * a key another server wrote after the index's position still gets its right
 * previous row.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import type { SqlStore } from "../lib/backend/sql/store.ts";
import { postgresEngine } from "../lib/backend/sql/postgres.ts";
import { mysqlEngine } from "../lib/backend/sql/mysql.ts";
import { sqliteEngine } from "../lib/backend/sql/sqlite.ts";
import type { SqlEngine } from "../lib/backend/sql/dialect.ts";
import { LogBackend } from "../lib/backend/logstructured/backend.ts";
import type { LogStore } from "../lib/backend/logstructured/log.ts";
import { backendOptions } from "../lib/mod.ts";
import { defaultConfig } from "../lib/config/parse.ts";
import { type Event, plainRange, type TxnResult } from "../lib/backend/types.ts";
import { openQuietStore, putOp, silent } from "../bench/kube_txns.ts";
import { MYSQL, POSTGRES, type TestBackend } from "./helpers/backends.ts";
import { BATCHES, load } from "./helpers/bulk_loads.ts";

/** SQLite in a file of the test's temporary directory. */
const SQLITE: TestBackend = {
  name: "sqlite",
  endpoint: (dir) => `sqlite://${dir}.db`,
  cleanup: async (dir) => {
    for (const suffix of ["", "-wal", "-shm"]) {
      await Deno.remove(`${dir}.db${suffix}`).catch(() => {});
    }
  },
  persistent: true,
};

const CASES: [TestBackend, SqlEngine][] = [
  [POSTGRES, postgresEngine],
  [MYSQL, mysqlEngine],
  [SQLITE, sqliteEngine(false)],
];

/** `store` with its known-rows bulk path hidden, or counting its uses into `used`. */
function variant(store: SqlStore, indexed: boolean, used: { n: number }): LogStore {
  return new Proxy(store, {
    get(target, p) {
      if (p === "writeKnownBulk") {
        if (!indexed) return undefined;
        return (...args: Parameters<NonNullable<LogStore["writeKnownBulk"]>>) => {
          used.n++;
          return target.writeKnownBulk!(...args);
        };
      }
      const v = Reflect.get(target, p);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function open(engine: SqlEngine, dsn: string, indexed: boolean, used = { n: 0 }) {
  const store = await openQuietStore(
    engine,
    dsn.replace(/^\w+:\/\//, ""),
    engine.dialect.name === "sqlite" ? 1 : 4,
  );
  const backend = new LogBackend(
    variant(store, indexed, used),
    backendOptions({ ...defaultConfig(), endpoint: dsn }, silent),
  );
  await backend.start();
  return { store, backend };
}

/** `x` with every byte array as a plain Uint8Array (drivers hand back Buffers). */
function plain(x: unknown): unknown {
  if (x instanceof Uint8Array) return new Uint8Array(x);
  if (Array.isArray(x)) return x.map(plain);
  if (x && typeof x === "object") {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, plain(v)]));
  }
  return x;
}

/** Events of every key from revision 1, gathered by a watch. */
async function watchAll(backend: LogBackend): Promise<Event[]> {
  const events: Event[] = [];
  await backend.watch("\0", "\0", 1, (batch) => {
    for (const e of batch) events.push(e);
  });
  return events;
}

for (const [tb, engine] of CASES) {
  Deno.test(`[${tb.name}] bulk loads from the key index write the rows of loads read from the store`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "indexed-bulk" });
    const dirs = [`${dir}_indexed`, `${dir}_plain`];
    const used = { n: 0 };
    const out: { results: (TxnResult | string)[][]; rows: unknown[]; events: Event[] }[] = [];
    try {
      for (const [i, d] of dirs.entries()) {
        const { store, backend } = await open(engine, tb.endpoint(d), i === 0, used);
        try {
          const events = await watchAll(backend);
          const results: (TxnResult | string)[][] = [];
          for (const batch of BATCHES) {
            // (A key the engine cannot store fails its load on both paths alike.)
            const settled = await Promise.allSettled(batch.map((t) => backend.txn(t)));
            results.push(settled.map((r) => r.status === "fulfilled" ? r.value : String(r.reason)));
          }
          await backend.waitForSyncTo(backend.currentRevision());
          const rows = await store.reader.events(0, 0, 10_000);
          out.push({ results, rows: plain(rows) as unknown[], events: plain(events) as Event[] });
        } finally {
          await backend.close();
        }
      }
      // (Not every load: one that follows ids a failed txn left unused waits for their gap fill,
      // up to the indexed path's bound, then takes the store's path.)
      assert.ok(used.n >= 2, `the indexed path ran (${used.n} times)`);
      assert.deepEqual(out[0].results, out[1].results, "the same answers");
      assert.deepEqual(out[0].rows, out[1].rows, "the same rows");
      assert.deepEqual(out[0].events, out[1].events, "the same events");
      const top = (out[0].results.at(-1)![0] as TxnResult).revision;
      assert.equal(out[0].events.at(-1)!.kv.modRevision, top, "watchers saw every row");
    } finally {
      for (const d of dirs) await tb.cleanup!(d);
      await Deno.remove(dir, { recursive: true });
    }
  });

  Deno.test(`[${tb.name}] a bulk load after another server's write of its key follows that write`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "indexed-bulk-ha" });
    const dsn = tb.endpoint(dir);
    try {
      const a = await open(engine, dsn, true);
      const c = await open(engine, dsn, true);
      try {
        await a.backend.txn(load(["/k/1", "/k/2"], "a"));
        for (let round = 0; round < 5; round++) {
          // C writes /k/1 (and creates /k/new); A, whose index may not have it yet, loads both.
          const w = await c.backend.txn({
            compare: [],
            success: [putOp("/k/1", b(`c${round}`)), putOp(`/k/new${round}`, b("c"))],
            failure: [],
          });
          const r = await a.backend.txn(load(["/k/1", `/k/new${round}`, "/k/2"], `a${round}`));
          assert.ok(r.revision > w.revision);
          await c.backend.waitForSyncTo(r.revision);
          for (const key of ["/k/1", `/k/new${round}`]) {
            const kv = (await c.backend.range(plainRange(key, ""))).kvs[0];
            const before = (await c.backend.range({ ...plainRange(key, ""), revision: w.revision }))
              .kvs[0];
            assert.equal(kv.version, before.version + 1, `${key} follows the other server's write`);
            assert.equal(kv.createRevision, before.createRevision);
            assert.equal(new TextDecoder().decode(kv.value), `a${round}:${key}`);
          }
        }
        const rows = await a.store.reader.events(0, 0, 10_000);
        const names = new Map<string, number>();
        for (const row of rows) {
          if (row.prevRevision !== 0) {
            assert.equal(names.get(row.name), row.prevRevision, `${row.name}: one chain`);
          }
          names.set(row.name, row.id);
        }
      } finally {
        await c.backend.close();
        await a.backend.close();
      }
    } finally {
      await tb.cleanup!(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}

for (const [tb, engine] of CASES) {
  Deno.test(`[${tb.name}] rows known from a stale position write nothing`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "indexed-bulk-guard" });
    const store = await openQuietStore(engine, tb.endpoint(dir).replace(/^\w+:\/\//, ""));
    try {
      const put = (name: string) => ({ name, value: b(name), lease: 0 });
      const none = { id: 0, createRevision: 0, version: 0, lease: 0, value: null };
      const [first] = await store.writeBulk!([[put("/g/1"), put("/g/2")]]);
      const rows = async () => (await store.reader.events(0, 0, 1000)).length;
      const before = await rows();
      // A row above the position: the guard fails the transaction.
      const stale = { prev: [[none]], position: first - 1 };
      assert.equal(await store.writeKnownBulk!([[put("/g/3")]], stale), null);
      // A key the writer thought new that has a row: the unique index fails it.
      const taken = { prev: [[none, none]], position: first };
      await assert.rejects(store.writeKnownBulk!([[put("/g/4"), put("/g/1")]], taken));
      assert.equal(await rows(), before, "nothing written");
      const ids = await store.writeKnownBulk!([[put("/g/5"), put("/g/6")]], taken);
      // Consecutive ids above the first load's (the failed attempts may have used some).
      assert.ok(ids![0][0] > first && ids![0][1] === ids![0][0] + 1, String(ids));
      assert.equal(await rows(), before + 2);
    } finally {
      await store.close();
      await tb.cleanup!(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
