/**
 * Values read from the store by row id (the key index's Range): on SQLite and
 * PostgreSQL 512 of them come back joined in one buffer and are cut apart by
 * their lengths. Values with NUL and 0xFF bytes, empty ones and a large one,
 * across more than one read of 512, come back exactly, read by a process
 * whose value cache is empty (a restart), as a whole list and in pages.
 */
import assert from "node:assert/strict";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { type Backend, plainRange } from "../lib/backend/types.ts";
import { putOp, silent } from "../bench/kube_txns.ts";
import { conformance, restartable } from "./helpers/conformance.ts";
import { b } from "./helpers/client.ts";
import { SQLITE } from "./helpers/backends.ts";

/** The value of key `i`: mostly 0..40 bytes of NUL, 0xFF and text; one empty, one of 300 KiB. */
function valueOf(i: number): Uint8Array {
  if (i === 7) return new Uint8Array(0);
  if (i === 600) return new Uint8Array(300 * 1024).map((_, j) => (j * 31 + i) & 0xff);
  const v = new Uint8Array(i % 41).map((_, j) => (j * 7 + i) & 0xff);
  if (v.length > 2) v[0] = 0, v[v.length - 1] = 0xff;
  return v;
}

async function withBackend(endpoint: string, fn: (b: Backend) => Promise<void>): Promise<void> {
  const { backend } = await openBackend(backendOptions({ ...defaultConfig(), endpoint }, silent));
  await backend.start();
  try {
    await fn(backend);
  } finally {
    await backend.close();
  }
}

const KEYS = 1300;
const keyOf = (i: number) => `/rv/${String(i).padStart(5, "0")}`;

restartable(
  "values read by id come back exact: NUL, 0xFF, empty, large, past 512",
  async (endpoint, backend) => {
    const batch = backend.multiKeyTxn === false ? 1 : 100;
    await withBackend(endpoint, async (b) => {
      for (let i = 0; i < KEYS; i += batch) {
        const ops = [];
        for (let j = i; j < Math.min(KEYS, i + batch); j++) ops.push(putOp(keyOf(j), valueOf(j)));
        await b.txn({ compare: [], success: ops, failure: [] });
      }
    });
    // A new process: nothing in its value cache, every value read from the store.
    await withBackend(endpoint, async (b) => {
      const whole = await b.range(plainRange("/rv/", "/rv0"));
      assert.equal(whole.kvs.length, KEYS);
      whole.kvs.forEach((kv, i) => {
        assert.equal(kv.key, keyOf(i));
        assert.deepEqual(new Uint8Array(kv.value), valueOf(i), `value of ${kv.key}`);
      });
      // Pages of 500 at one revision, each its own read.
      let key = "/rv/";
      let n = 0;
      for (;;) {
        const page = await b.range({ ...plainRange(key, "/rv0"), limit: 500 });
        for (const kv of page.kvs) assert.deepEqual(new Uint8Array(kv.value), valueOf(n++));
        if (!page.more) break;
        key = page.nextKey!;
      }
      assert.equal(n, KEYS);
    });
  },
);

conformance(
  "large lists in flight together on one connection come back exact (pooled socket writes)",
  async (k) => {
    // ~2.4 MiB per answer: each leaves in several joined socket writes of ~1 MiB.
    const n = 3000;
    const valueOf = (i: number) => new Uint8Array(800).map((_, j) => (i * 131 + j * 7) & 0xff);
    for (let i = 0; i < n; i += 100) {
      await k.client.kv.txn({
        success: Array.from({ length: Math.min(100, n - i) }, (_, j) => ({
          request_put: { key: b(`/lv/${String(i + j).padStart(5, "0")}`), value: valueOf(i + j) },
        })),
      });
    }
    const lists = await Promise.all(
      [0, 1, 2, 3].map(() => k.client.kv.range({ key: b("/lv/"), range_end: b("/lv0") })),
    );
    for (const r of lists) {
      assert.equal(r.kvs.length, n);
      r.kvs.forEach((kv: { value: Uint8Array }, i: number) =>
        assert.deepEqual(new Uint8Array(kv.value), valueOf(i), `value ${i}`)
      );
    }
  },
  {},
  (backend) => backend === SQLITE,
);
