/**
 * Compaction in batches sized by time: a batch holds the write queue, so the
 * compactor starts small and sizes each batch from the last one's time
 * (toward 25 ms, bound 50 ms), and exports every batch's time as
 * `kine_compact_batch_seconds`.
 */
import assert from "node:assert/strict";
import { b, type EtcdClient } from "./helpers/client.ts";
import { startTestKine } from "./helpers/kine.ts";
import { sqliteEngine } from "../lib/backend/sql/sqlite.ts";
import { WritePipeline } from "../lib/backend/logstructured/write_pipeline.ts";
import type { Txn } from "../lib/backend/types.ts";
import { compactKeyRow } from "../lib/backend/logstructured/compact_key.ts";
import { openQuietStore, putOp, silent } from "../bench/kube_txns.ts";

/** Writes keys /c/0…/c/99 `rounds` times, a txn of 100 puts each; returns the revision reached. */
async function rewriteKeys(client: EtcdClient, rounds: number): Promise<number> {
  for (let round = 0; round < rounds; round++) {
    await client.kv.txn({
      compare: [],
      success: Array.from({ length: 100 }, (_, i) => ({
        request_put: { key: b(`/c/${i}`), value: b(`v${round}`) },
      })),
      failure: [],
    });
  }
  return Number((await client.kv.range({ key: b("/c/0") })).header.revision);
}

Deno.test("a large compaction runs in batches of bounded time, each one measured", async () => {
  // A batch size far above the history: without time-sized batches, one transaction.
  const k = await startTestKine({
    compactBatchSize: 1_000_000,
    compactMinRetain: 0,
    metricsBindAddress: "127.0.0.1:0",
  });
  try {
    const current = await rewriteKeys(k.client, 20);
    assert.ok(current >= 2000);
    await k.client.kv.compact({ revision: current });
    await assert.rejects(k.client.kv.range({ key: b("/c/0"), revision: current - 1 }));
    const got = await k.client.kv.range({ key: b("/c/"), range_end: b("/c0") });
    assert.equal(got.kvs.length, 100);

    const text = await (await fetch(k.kine.metricsUrl!)).text();
    const count = /^kine_compact_batch_seconds_count (\d+)$/m.exec(text);
    assert.ok(count, "kine_compact_batch_seconds is exported");
    assert.ok(Number(count[1]) >= 2, `${count[1]} batches for ${current} revisions`);
  } finally {
    await k.close();
  }
});

Deno.test("a client write is answered while a long compaction is still running", async () => {
  // On SQLite every step of a batch resolves at once; a write sent right behind the Compact call
  // must still get in between two batches instead of waiting for the whole run.
  const k = await startTestKine({ compactBatchSize: 100, compactMinRetain: 0 });
  try {
    const current = await rewriteKeys(k.client, 100);
    const answered: string[] = [];
    const compaction = k.client.kv.compact({ revision: current }).then(() => {
      answered.push("compact");
    });
    const write = k.client.kv.put({ key: b("/during"), value: b("x") }).then(() => {
      answered.push("put");
    });
    await Promise.all([compaction, write]);
    assert.deepEqual(answered, ["put", "compact"]);
  } finally {
    await k.close();
  }
});

Deno.test("[sqlite] a compaction batch is bounded by the rows it deletes, not only by revisions", async () => {
  // 300 creates (nothing to delete), then 300 updates of them (a row each): a batch sized for the
  // creates must stop in the updates after the rows it may delete.
  const dir = await Deno.makeTempDir({ prefix: "compact-bound" });
  const store = await openQuietStore(sqliteEngine(false), `${dir}/state.db`);
  try {
    // The bookkeeping row a backend's start writes: the compact revision is its prev_revision.
    await store.write(async (tx) => await tx.append(compactKeyRow()));
    const pipeline = new WritePipeline(store, { logger: silent }, () => {});
    const load = (tag: string): Txn => ({
      compare: [],
      success: Array.from({ length: 300 }, (_, i) => putOp(`/k/${i}`, b(tag))),
      failure: [],
    });
    const created = (await pipeline.txn(load("a"))).revision;
    const updated = (await pipeline.txn(load("b"))).revision;
    const { compact } = await store.reader.revisions();
    const bound = await store.write(async (tx) => await tx.compactBound!(compact, updated, 100));
    assert.deepEqual(bound, { target: created + 100, cut: true }, "creates, then 100 updates");
    const whole = await store.write(async (tx) => await tx.compactBound!(compact, updated, 300));
    assert.deepEqual(whole, { target: updated, cut: false }, "300 updates fit in 300 rows");
    const before = (await store.reader.rows(0, updated, 10_000)).length;
    assert.ok(await store.write(async (tx) => await tx.compactTo(compact, bound.target)));
    const after = (await store.reader.rows(0, updated, 10_000)).length;
    assert.equal(before - after, 100, "the batch deleted the rows it was bounded to");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
