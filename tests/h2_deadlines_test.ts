/** Call deadlines on one timer per timeout value (lib/server/h2/deadlines.ts). */
import assert from "node:assert/strict";
import { Deadlines } from "../lib/server/h2/deadlines.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("deadlines expire in order, on time, except those cancelled; no timer is left", async () => {
  const d = new Deadlines();
  const expired: string[] = [];
  const started = performance.now();
  const at: Record<string, number> = {};
  const add = (name: string, ms: number) =>
    d.add(ms, () => {
      expired.push(name);
      at[name] = performance.now() - started;
    });
  add("a", 60);
  const b = add("b", 60);
  add("c", 20);
  await sleep(10);
  add("d", 60.2); // what a client sends: what is left of its context's timeout
  b.cancel();
  b.cancel(); // twice is once
  await sleep(150);
  assert.deepEqual(expired, ["c", "a", "d"]);
  // Never early; late by at most the spread (and the timers' own lateness).
  assert.ok(at.c >= 19 && at.a >= 59 && at.d >= 70, JSON.stringify(at));
  // Every call cancelled before its deadline: the timer goes with the last one (the test's
  // sanitizer fails on a timer left behind).
  const many = Array.from({ length: 3000 }, () => d.add(1000, () => expired.push("late")));
  for (const m of many) m.cancel();
  assert.equal(expired.length, 3);
});

Deno.test("calls that ended behind a long one are not held until it ends", () => {
  const d = new Deadlines();
  // A stream with the same timeout as the unary calls after it stays at the head of the queue.
  const stream = d.add(3_600_000, () => {});
  for (let i = 0; i < 20_000; i++) d.add(3_600_000, () => {}).cancel();
  assert.ok(d.held <= 2049, `held ${d.held}`);
  stream.cancel();
  assert.equal(d.held, 0);
});
