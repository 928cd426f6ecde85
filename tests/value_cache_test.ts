/**
 * The cache of values written and read: its byte budget, and that a list of
 * them takes its values from memory instead of the store (counted by
 * `kine_sql_total{name="values"}`), with the same answer.
 */
import assert from "node:assert/strict";
import { ValueCache } from "../lib/backend/logstructured/value_cache.ts";
import { IdTable } from "../lib/backend/logstructured/id_table.ts";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";

Deno.test("ValueCache keeps the newest values within its budget, each intact", () => {
  const budget = 64 * 1024;
  const cache = new ValueCache(budget);
  const value = (id: number) => new Uint8Array((id * 7919) % 1000).fill(id % 251);
  let x = 1;
  const ids: number[] = [];
  for (let n = 0; n < 5000; n++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    const id = n * 3 + (x % 3);
    ids.push(id);
    cache.add(id, value(id));
    if (n % 251 !== 0) continue;
    // Every value held is its own; the newest ones that fit in the ring are all held
    // (less its tail left unused at a wrap: shorter than the largest value kept).
    let room = budget - budget / 64 - 4;
    let newest = true;
    for (let k = ids.length - 1; k >= 0; k--) {
      const got = cache.get(ids[k]);
      if (got) assert.deepEqual(got, value(ids[k]));
      room -= value(ids[k]).length + 4;
      if (room >= 0 && newest) assert.ok(got, `value ${k} of ${ids.length} was dropped early`);
      if (!got) newest = false;
    }
  }
  assert.ok(cache.size > 64, `${cache.size} values held`);
  // A value over 1/64 of the budget would push out many: not kept.
  cache.add(1e9, new Uint8Array(2048));
  assert.equal(cache.get(1e9), undefined);
});

Deno.test("ValueCache hands out copies: a value kept by a caller outlives the ring's reuse", () => {
  const cache = new ValueCache(64 * 1024);
  cache.add(1, new Uint8Array(500).fill(1));
  const kept = cache.get(1)!;
  for (let id = 2; id < 1000; id++) cache.add(id, new Uint8Array(500).fill(id % 256));
  assert.equal(cache.get(1), undefined);
  assert.deepEqual(kept, new Uint8Array(500).fill(1));
});

Deno.test("IdTable answers as a Map would through inserts, updates, deletes and growth", () => {
  const table = new IdTable(4);
  const map = new Map<number, number>();
  let x = 7;
  for (let n = 0; n < 40_000; n++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    // Ids from a small range (many collisions and re-inserts), 0 included, and some large ones.
    const id = x % 5 === 0 ? 2 ** 40 + (x % 997) : x % 3000;
    if (x % 3 === 0) {
      table.delete(id);
      map.delete(id);
    } else {
      table.set(id, n);
      map.set(id, n);
    }
    if (n % 997 === 0) {
      assert.equal(table.size, map.size);
      for (let k = 0; k < 3000; k++) assert.equal(table.get(k), map.get(k), `id ${k}`);
      for (let k = 0; k < 997; k++) assert.equal(table.has(2 ** 40 + k), map.has(2 ** 40 + k));
    }
  }
});

Deno.test("ValueCache.fill: runs of neighbours, gaps and misses each get their own value", () => {
  const cache = new ValueCache(64 * 1024);
  const value = (id: number) => new Uint8Array(id % 37).fill(id % 251);
  for (let id = 1; id <= 400; id++) if (id % 7 !== 0) cache.add(id, value(id));
  // In ring order (runs), out of order, with misses (multiples of 7) and a repeat.
  const ids = [
    ...Array.from({ length: 60 }, (_, i) => 100 + i),
    5,
    3,
    4,
    399,
    1000,
    42,
    120,
  ];
  const kvs = ids.map((id) => ({
    key: `k${id}`,
    createRevision: id,
    modRevision: id,
    version: 1,
    lease: 0,
    value: new Uint8Array(0),
  }));
  const missing = cache.fill(kvs);
  assert.deepEqual(
    missing.map((kv) => kv.modRevision),
    ids.filter((id) => id % 7 === 0 || id > 400),
  );
  for (const kv of kvs) {
    if (kv.modRevision % 7 === 0 || kv.modRevision > 400) continue;
    assert.deepEqual(kv.value, value(kv.modRevision), `value of ${kv.modRevision}`);
  }
});

/** `kine_sql_total` of the statements named `values`. */
async function valueReads(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let n = 0;
  for (const m of text.matchAll(/^kine_sql_total\{name="values"[^}]*\} (\d+)$/gm)) {
    n += Number(m[1]);
  }
  return n;
}

conformance(
  "a list of values written or read before takes them from memory, not the store",
  async ({ client, kine }) => {
    const before = await valueReads(kine.metricsUrl!);
    for (let i = 0; i < 20; i++) {
      await client.kv.put({ key: b(`/v/${String(i).padStart(2, "0")}`), value: b(`v${i}`) });
    }
    const list = async (): Promise<string[]> =>
      (await client.kv.range({ key: b("/v/"), range_end: b("/v0"), limit: 8 })).kvs
        .map((kv: any) => `${s(kv.key)}=${s(kv.value)}`);
    const first = await list();
    assert.deepEqual(first, Array.from({ length: 8 }, (_, i) => `/v/0${i}=v${i}`));
    assert.deepEqual(await list(), first);
    await client.kv.put({ key: b("/v/03"), value: b("new") });
    const third = await list();
    assert.equal(third[3], "/v/03=new");
    assert.deepEqual(third.filter((_, i) => i !== 3), first.filter((_, i) => i !== 3));
    assert.equal(await valueReads(kine.metricsUrl!), before, "a list read values from the store");
  },
  { metricsBindAddress: "127.0.0.1:0" },
  (backend) => ["sqlite", "postgres", "mysql"].includes(backend.name),
);
