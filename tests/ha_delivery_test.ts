/**
 * Delivery between servers on one store. Where nothing announces commits
 * (SQLite here; MySQL alike) the poll timer drops to 1 ms (MySQL: 5 ms)
 * while it finds another server's rows, so a steady writer elsewhere is followed within
 * milliseconds, not at `--poll-interval` (the interval it backs off to). On
 * PostgreSQL the NOTIFY the server sends right after the batch's commit,
 * carrying its revision, wakes the other servers.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import { startTestKine } from "./helpers/kine.ts";
import { POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { WatchClient } from "./helpers/watch.ts";

for (
  const [backend, pollInterval] of [[SQLITE, 400], [POSTGRES, 5000]] as [TestBackend, number][]
) {
  Deno.test(`[${backend.name}] another server's steady writes reach watchers in milliseconds`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "kine-ha-delivery-" });
    const endpoint = backend.endpoint(dir);
    const a = await startTestKine({ endpoint, pollInterval });
    const other = await startTestKine({ endpoint, pollInterval });
    const w = new WatchClient(other.endpoint);
    try {
      const id = (await w.watch({ key: "/d/", rangeEnd: "/d0" })).watch_id;
      const delays: number[] = [];
      for (let i = 0; i < 30; i++) {
        await a.client.kv.put({ key: b(`/d/${i}`), value: b("v") });
        const t0 = performance.now();
        await w.waitEvents(id, i + 1, 2 * pollInterval);
        delays.push(performance.now() - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
      delays.sort((x, y) => x - y);
      const median = delays[delays.length >> 1];
      // The poll interval alone delivers after half of it on average.
      assert.ok(median < 100, `median delivery ${median.toFixed(1)} ms: ${delays.map(Math.round)}`);
    } finally {
      await w.close();
      await other.close();
      await a.close();
      await backend.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
