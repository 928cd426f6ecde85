// Shared by the watch tests: writes that return their revision, streams opened and
// closed around a test, and assertions on what a stream received.

import assert from "node:assert/strict";
import { b } from "./client.ts";
import type { TestBackend } from "./backends.ts";
import type { TestKine } from "./kine.ts";
import { brief, key, WatchClient } from "./watch.ts";

export const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
export const FUTURE = "etcdserver: mvcc: required revision is a future revision";
export const OUT_OF_RANGE = 11;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function put(k: TestKine, k_: string, v: string): Promise<number> {
  return (await k.client.kv.put({ key: b(k_), value: b(v) })).header.revision;
}

export async function del(k: TestKine, k_: string): Promise<number> {
  return (await k.client.kv.deleteRange({ key: b(k_) })).header.revision;
}

/**
 * Writes `ops` in one txn, or one by one where a txn may write one key only
 * (NATS; in order, so the revisions are consecutive there too); returns the last revision.
 */
export async function writeAll(k: TestKine, backend: TestBackend, ops: object[]): Promise<number> {
  if (backend.multiKeyTxn !== false) {
    return (await k.client.kv.txn({ compare: [], success: ops, failure: [] })).header.revision;
  }
  let last = 0;
  for (const op of ops) {
    last = (await k.client.kv.txn({ compare: [], success: [op] })).header.revision;
  }
  return last;
}

export const revs = (events: any[]): number[] => events.map((e) => e.kv.mod_revision);
export const keys = (events: any[]): string[] => events.map(key);

/** Opens `n` watch streams, runs `fn`, and always closes them. */
export async function streams<T>(
  k: TestKine,
  n: number,
  fn: (...w: WatchClient[]) => Promise<T>,
  ownConnection = false,
): Promise<T> {
  const ws = Array.from({ length: n }, () => new WatchClient(k.endpoint, ownConnection));
  try {
    return await fn(...ws);
  } finally {
    for (const w of ws) await w.close();
  }
}

/** Header revisions on one stream never go backwards (0 aside), and are never 0 on events. */
export function assertMonotonic(w: WatchClient): void {
  let max = 0;
  for (const r of w.responses) {
    const rev = r.header.revision;
    if (r.events.length > 0) assert.ok(rev > 0, `event response with revision 0: ${brief(r)}`);
    if (rev === 0) continue;
    assert.ok(rev >= max, `header went back from ${max} to ${rev}`);
    max = rev;
  }
}

/** Every event response's header is at least its last event's revision (equal if `exact`). */
export function assertHeadersCoverEvents(w: WatchClient, exact: boolean): void {
  for (const r of w.responses) {
    if (r.events.length === 0) continue;
    const last = r.events[r.events.length - 1].kv.mod_revision;
    if (exact) assert.equal(r.header.revision, last, JSON.stringify(brief(r)));
    else assert.ok(r.header.revision >= last, JSON.stringify(brief(r)));
  }
}

/** Fails with the gRPC status code and message expected. */
export async function rejects(p: Promise<unknown>, code: number, message: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code);
    assert.equal(err.details, message);
    return true;
  });
}

/** Waits until `cond` holds, failing with `what` after `ms`. */
export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
