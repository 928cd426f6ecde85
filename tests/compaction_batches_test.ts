/**
 * Compaction in batches sized by time: a batch holds the write queue, so the
 * compactor starts small and sizes each batch from the last one's time
 * (toward 25 ms, bound 50 ms), and exports every batch's time as
 * `kine_compact_batch_seconds`.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import { startTestKine } from "./helpers/kine.ts";

Deno.test("a large compaction runs in batches of bounded time, each one measured", async () => {
  // A batch size far above the history: without time-sized batches, one transaction.
  const k = await startTestKine({
    compactBatchSize: 1_000_000,
    compactMinRetain: 0,
    metricsBindAddress: "127.0.0.1:0",
  });
  try {
    for (let round = 0; round < 20; round++) {
      await k.client.kv.txn({
        compare: [],
        success: Array.from({ length: 100 }, (_, i) => ({
          request_put: { key: b(`/c/${i}`), value: b(`v${round}`) },
        })),
        failure: [],
      });
    }
    const current = Number((await k.client.kv.range({ key: b("/c/0") })).header.revision);
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
