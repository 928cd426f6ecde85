/**
 * Linearizable reads across servers (etcd's ReadIndex over the key index):
 * a Range through server B that starts after server A acknowledged a write
 * sees that write, and header revisions never go back, with two daemons on
 * one SQLite file, one PostgreSQL database, one MySQL database and one NATS
 * bucket.
 */
import assert from "node:assert/strict";
import { MYSQL, NATS, POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { b, s } from "./helpers/client.ts";
import { startCluster } from "./helpers/cluster.ts";

/** Concurrent linearizable reads checked against acknowledged writes, per backend (issue 26). */
const READS = 10_000;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

function ms(samples: number[]): string {
  const sorted = [...samples].sort((x, y) => x - y);
  return `p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99 ${
    percentile(sorted, 0.99).toFixed(2)
  } ms`;
}

for (const backend of [SQLITE, POSTGRES, MYSQL, NATS] as TestBackend[]) {
  Deno.test(`[${backend.name}] a linearizable Range through B sees every write A acknowledged`, async () => {
    const cluster = await startCluster(backend, 2);
    const [a, bee] = cluster.members;
    try {
      // One after the other: write through A, read through B at once.
      const linear: number[] = [];
      const serial: number[] = [];
      for (let i = 0; i < 300; i++) {
        const put = await a.client.kv.put({ key: b(`/ryw/${i % 10}`), value: b(`v${i}`) });
        const acked = Number(put.header.revision);
        let t = performance.now();
        const got = await bee.client.kv.range({ key: b(`/ryw/${i % 10}`) });
        linear.push(performance.now() - t);
        assert.equal(s(got.kvs[0]?.value), `v${i}`, `read ${i} through B is stale`);
        assert.ok(Number(got.header.revision) >= acked, `header ${got.header.revision} < ${acked}`);
        t = performance.now();
        await bee.client.kv.range({ key: b(`/ryw/${i % 10}`), serializable: true });
        serial.push(performance.now() - t);
      }
      console.log(
        `Range through B after a write through A: linearizable ${ms(linear)}; ` +
          `serializable ${ms(serial)}`,
      );

      // Side by side: writers through A, readers through B; a read that starts after an
      // acknowledgement must see that write (or a later one), and headers never go back
      // on a reader's connection.
      const acked = new Map<string, number>();
      let writing = true;
      let reads = 0;
      const writers = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; writing; i++) {
          const key = `/ryw/c/${w}/${i % 5}`;
          const put = await a.client.kv.put({ key: b(key), value: b(`${i}`) });
          const rev = Number(put.header.revision);
          if ((acked.get(key) ?? 0) < rev) acked.set(key, rev);
        }
      });
      const readers = Array.from({ length: 16 }, async () => {
        let lastHeader = 0;
        while (reads < READS) {
          const known = [...acked];
          if (known.length === 0) {
            await new Promise((r) => setTimeout(r, 1));
            continue;
          }
          const [key, rev] = known[Math.floor(Math.random() * known.length)];
          const got = await bee.client.kv.range({ key: b(key) });
          reads++;
          const header = Number(got.header.revision);
          assert.ok(header >= lastHeader, `header went back from ${lastHeader} to ${header}`);
          lastHeader = header;
          const mod = Number(got.kvs[0]?.mod_revision ?? 0);
          assert.ok(mod >= rev, `${key}: read mod ${mod} after ${rev} was acknowledged`);
        }
      });
      try {
        await Promise.all(readers);
      } finally {
        writing = false;
        await Promise.all(writers);
      }
      assert.ok(reads >= READS);
    } finally {
      await cluster.close();
    }
  });
}
