/**
 * Round trips of a commit batch on PostgreSQL and MariaDB, counted on the
 * wire by a relay between the store and the server: kube-apiserver's
 * create, update and delete, and a batch of many, each cost one.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import { startRttProxy } from "../bench/rtt_proxy.ts";
import type { SqlStore } from "../lib/backend/sql/store.ts";
import { postgresEngine } from "../lib/backend/sql/postgres.ts";
import { mysqlEngine } from "../lib/backend/sql/mysql.ts";
import type { SqlEngine } from "../lib/backend/sql/dialect.ts";
import { WritePipeline } from "../lib/backend/logstructured/write_pipeline.ts";
import type { Op, Txn, TxnResult } from "../lib/backend/types.ts";
import { deleteOp, kubeTxn as kube, openQuietStore, putOp, silent } from "../bench/kube_txns.ts";
import { MYSQL, POSTGRES, type TestBackend } from "./helpers/backends.ts";

const put = (key: string, value: string, prevKv = false): Op => putOp(key, b(value), prevKv);
const del = deleteOp;

interface Case {
  backend: TestBackend;
  engine: SqlEngine;
  /** The server's address and the DSN through the relay at `port`. */
  server: { host: string; port: number };
  dsn(port: number, db: string): string;
}

const CASES: Case[] = [
  {
    backend: POSTGRES,
    engine: postgresEngine,
    server: { host: "127.0.0.1", port: 5432 },
    dsn: (port, db) => `postgres@127.0.0.1:${port}/${db}?sslmode=disable`,
  },
  {
    backend: { ...POSTGRES, name: "postgres, unprepared" },
    engine: postgresEngine,
    server: { host: "127.0.0.1", port: 5432 },
    dsn: (port, db) =>
      `postgres@127.0.0.1:${port}/${db}?sslmode=disable&default_query_exec_mode=simple_protocol`,
  },
  {
    backend: MYSQL,
    engine: mysqlEngine,
    server: { host: "127.0.0.1", port: 3306 },
    dsn: (port, db) => `root@tcp(127.0.0.1:${port})/${db}`,
  },
];

for (const c of CASES) {
  Deno.test(`[${c.backend.name}] one round trip per commit batch`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "rtt" });
    const db = "kt_" + dir.replace(/.*\//, "").replace(/[^a-z0-9]/gi, "_").toLowerCase();
    const proxy = startRttProxy(c.server);
    let store: SqlStore | undefined;
    try {
      store = await openQuietStore(c.engine, c.dsn(proxy.port, db));
      const pipeline = new WritePipeline(store, { logger: silent }, () => {});
      const trips = async (txns: Txn[]): Promise<{ n: number; results: TxnResult[] }> => {
        const before = proxy.trips;
        const results = await Promise.all(txns.map((t) => pipeline.txn(t)));
        return { n: proxy.trips - before, results };
      };
      await trips([kube("/warm", 0, put("/warm", "x"))]); // the connection's login

      const created = await trips([kube("/a", 0, put("/a", "1"))]);
      assert.equal(created.n, 1, "create");
      assert.equal(created.results[0].succeeded, true);
      const rev = created.results[0].revision;

      const updated = await trips([kube("/a", rev, put("/a", "2", true))]);
      assert.equal(updated.n, 1, "update");
      const prev = updated.results[0].responses[0];
      assert.ok(prev.type === "put" && prev.prevKv);
      assert.deepEqual({ ...prev.prevKv, value: [...prev.prevKv.value] }, {
        key: "/a",
        value: [...b("1")],
        createRevision: rev,
        modRevision: rev,
        version: 1,
        lease: 0,
      });

      const stale = await trips([kube("/a", rev, put("/a", "3"))]);
      assert.equal(stale.n, 1, "failed update");
      assert.equal(stale.results[0].succeeded, false);
      const seen = stale.results[0].responses[0];
      assert.ok(seen.type === "range");
      assert.equal(new TextDecoder().decode(seen.result.kvs[0].value), "2");
      assert.equal(seen.result.kvs[0].version, 2);

      const deleted = await trips([kube("/a", updated.results[0].revision, del("/a"))]);
      assert.equal(deleted.n, 1, "delete");
      assert.equal(deleted.results[0].succeeded, true);
      assert.deepEqual(deleted.results[0].responses[0], {
        type: "delete",
        deleted: 1,
        prevKvs: [],
      });

      // 50 txns in one batch, some on one key: later ones see earlier ones' rows.
      const batch: Txn[] = [];
      for (let i = 0; i < 48; i++) batch.push(kube(`/b/${i}`, 0, put(`/b/${i}`, "v")));
      batch.push(kube("/b/0", 0, put("/b/0", "again")));
      batch.push({ compare: [], success: [put("/b/1", "plain", true)], failure: [] });
      const many = await trips(batch);
      assert.equal(many.n, 1, "batch of 50");
      assert.ok(many.results.slice(0, 48).every((r) => r.succeeded));
      assert.equal(many.results[48].succeeded, false, "a second create of /b/0 fails");
      const plain = many.results[49].responses[0];
      assert.ok(plain.type === "put" && plain.prevKv?.modRevision === many.results[1].revision);
      const revisions = many.results.slice(0, 48).map((r) => r.revision);
      assert.equal(new Set(revisions).size, 48, "every write its own revision");
      assert.deepEqual(revisions, [...revisions].sort((x, y) => x - y), "in the batch's order");
      // A failed compare amid a batch fails that txn alone.
      const mixed = await trips([
        kube("/c/0", 0, put("/c/0", "v")),
        kube("/b/2", 0, put("/b/2", "taken")),
        kube("/b/3", revisions[3], del("/b/3")),
        kube("/c/1", 0, put("/c/1", "v")),
      ]);
      assert.equal(mixed.n, 1, "batch with a failed compare");
      assert.deepEqual(mixed.results.map((r) => r.succeeded), [true, false, true, true]);
      const taken = mixed.results[1].responses[0];
      assert.ok(taken.type === "range" && taken.result.kvs[0].modRevision === revisions[2]);
      assert.ok(mixed.results[3].revision > mixed.results[2].revision);
      assert.ok(mixed.results[1].revision >= mixed.results[0].revision, "revisions never go back");

      // A bulk load: 100 puts in one txn, one multi-row insert, one round trip.
      const top = Math.max(...mixed.results.map((r) => r.revision));
      const bulk = await trips([{
        compare: [],
        success: Array.from(
          { length: 100 },
          (_, i) => put(i < 2 ? `/b/${i}` : `/bulk/${i}`, `${i}`),
        ),
        failure: [],
      }]);
      assert.equal(bulk.n, 1, "bulk load of 100 puts");
      assert.equal(bulk.results[0].revision, top + 100);

      // Bulk loads of one batch share a round trip; one that fails runs alone and fails alone.
      const load = (prefix: string, n: number): Txn => ({
        compare: [],
        success: Array.from({ length: n }, (_, i) => put(`${prefix}/${i}`, `${i}`)),
        failure: [],
      });
      const loads = await trips([load("/l1", 50), load("/l2", 50), load("/l3", 50)]);
      assert.equal(loads.n, 1, "three bulk loads in one batch");
      assert.deepEqual(
        loads.results.map((r) => r.revision),
        [1, 2, 3].map((i) => bulk.results[0].revision + 50 * i),
      );
      const unfit = load("/l4", 3);
      unfit.success.push(put("/l4/\0\u00e9", "x"));
      const settled = await Promise.allSettled(
        [load("/l5", 3), unfit, load("/l6", 3)].map((t) => pipeline.txn(t)),
      );
      assert.deepEqual(settled.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
      const l4 = await trips([kube("/l4/0", 0, put("/l4/0", "x"))]);
      assert.equal(l4.results[0].succeeded, true, "nothing of the failed load was written");

      const after = await trips([kube("/b/1", 0, put("/b/1", "x"))]);
      const b1 = after.results[0].responses[0];
      assert.ok(b1.type === "range", "/b/1 exists");
      assert.equal(new TextDecoder().decode(b1.result.kvs[0].value), "1");
      assert.equal(b1.result.kvs[0].version, 3, "created, put plainly, put by the bulk load");
    } finally {
      await store?.close();
      await proxy.close();
      await c.backend.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
