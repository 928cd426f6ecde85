import assert from "node:assert/strict";
import { ReadIndex } from "../lib/backend/read_index.ts";

Deno.test("read index: callers during a lookup share the next one, never an older one", async () => {
  let store = 10;
  const lookups: { started: number; resolve: () => void }[] = [];
  const applied: number[] = [];
  const index = new ReadIndex(
    () =>
      new Promise<number>((resolve) => {
        const started = store;
        lookups.push({ started, resolve: () => resolve(started) });
      }),
    (revision) => {
      applied.push(revision);
      return Promise.resolve();
    },
  );
  const first = index.barrier();
  store = 11; // a write commits after the first lookup started
  const second = index.barrier();
  const third = index.barrier();
  assert.deepEqual(lookups.length, 1);
  lookups[0].resolve();
  assert.deepEqual(await first, 10);
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(lookups.length, 2, "the queued callers get a lookup of their own");
  lookups[1].resolve();
  assert.deepEqual([await second, await third], [11, 11]);
  assert.deepEqual(applied, [10, 11, 11]);
});
