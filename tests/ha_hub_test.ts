/**
 * The poll loop against a log whose ids commit out of order, as several
 * servers' transactions do on one database: rows above a missing id are
 * published once, in order, when it commits, and are not read again while
 * they wait; an id held by a transaction in flight is never filled over.
 */
import assert from "node:assert/strict";
import { WatchHub } from "../lib/backend/logstructured/watch_hub.ts";
import type { EventRow } from "../lib/backend/logstructured/log.ts";
import { silentLogger } from "../lib/log/mod.ts";
import type { Event } from "../lib/backend/types.ts";

/** A log of committed rows; ids not committed yet are simply absent. */
class FakeLog {
  readonly committed = new Map<number, EventRow>();
  /** Ids a transaction in flight holds: a fill meets them and gives up. */
  readonly held = new Set<number>();
  rowsRead = 0;
  fills: number[][] = [];

  commit(id: number): void {
    this.held.delete(id);
    this.committed.set(id, row(id, `/k/${id}`));
  }

  readonly reader = {
    events: (after: number, upTo: number, limit: number): EventRow[] => {
      const ids = [...this.committed.keys()]
        .filter((id) => id > after && (upTo === 0 || id <= upTo))
        .sort((a, b) => a - b).slice(0, limit);
      this.rowsRead += ids.length;
      return ids.map((id) => this.committed.get(id)!);
    },
    revisions: () => ({ current: Math.max(0, ...this.committed.keys()), compact: 0 }),
  };

  fill(ids: number[]): Promise<number | null> {
    this.fills.push(ids);
    if (ids.some((id) => this.held.has(id))) return Promise.resolve(null);
    let filled = 0;
    for (const id of ids) {
      if (this.committed.has(id)) continue;
      this.committed.set(id, { ...row(id, `gap-${id}`), deleted: true, created: false });
      filled++;
    }
    return Promise.resolve(filled);
  }
}

/** A create of `/k/<id>` (or any `name`) with no history before it. */
function row(id: number, name: string): EventRow {
  const none = new Uint8Array(0);
  const zeros = { createRevision: 0, prevRevision: 0, lease: 0, prevCreateRevision: 0 };
  return {
    id,
    name,
    created: true,
    deleted: false,
    value: none,
    oldValue: none,
    version: 1,
    prevLease: 0,
    ...zeros,
  };
}

/** A hub on `log` whose timer never fires during the test, and what it published. */
function hubOn(log: FakeLog, pollBatchSize = 100): { hub: WatchHub; seen: number[] } {
  const hub: WatchHub = new WatchHub(
    { reader: log.reader, fill: (ids) => log.fill(ids) },
    { pollBatchSize, fillRetryDelayMs: 0, pollIntervalMs: 60_000, logger: silentLogger },
    () => {},
    (): number => hub.polled,
  );
  const seen: number[] = [];
  hub.onPublish((events: Event[]) => seen.push(...events.map((e) => e.kv.modRevision)));
  hub.start(0);
  return { hub, seen };
}

Deno.test("rows above a missing id are published once, in order, and not read again while it is missing", async () => {
  const log = new FakeLog();
  for (let id = 1; id <= 20; id++) if (id !== 3 && id !== 6) log.commit(id);
  log.held.add(3);
  log.held.add(6);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(2);
    assert.deepEqual(seen, [1, 2]);
    const read = log.rowsRead;
    assert.equal(read, 18);
    // 3 commits first: 3, 4, 5 follow; 6 is still missing.
    log.commit(3);
    hub.wake("notify");
    await hub.waitForSyncTo(5);
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    log.commit(6);
    log.commit(21);
    hub.wake("notify");
    await hub.waitForSyncTo(21);
    assert.deepEqual(seen, Array.from({ length: 21 }, (_, i) => i + 1));
    // 7..20 were read once: later reads covered the span up to the missing ids, then 21.
    assert.ok(log.rowsRead - read <= 8, `read ${log.rowsRead - read} rows again`);
  } finally {
    await hub.close();
  }
});

Deno.test("an id held by a transaction in flight is not filled; its row is published when it commits", async () => {
  const log = new FakeLog();
  log.commit(1);
  log.commit(3);
  log.held.add(2);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(1);
    // Past the stand time the loop tries to fill 2, meets it held, and fills nothing.
    while (log.fills.length === 0) {
      await new Promise((r) => setTimeout(r, 20));
      hub.wake("poll");
    }
    assert.deepEqual(log.fills[0], [2]);
    assert.equal(hub.polled, 1);
    log.commit(2);
    hub.wake("notify");
    await hub.waitForSyncTo(3);
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(log.committed.get(2)?.name, "/k/2", "the held id was filled over");
  } finally {
    await hub.close();
  }
});

Deno.test("an id nobody holds is filled and never shown; the rows above it follow in order", async () => {
  const log = new FakeLog();
  for (const id of [1, 3, 4]) log.commit(id);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(4);
    assert.deepEqual(seen, [1, 3, 4]);
    assert.equal(log.committed.get(2)?.name, "gap-2");
  } finally {
    await hub.close();
  }
});

Deno.test("ids committing in any order, some never: every row is published once, in id order", async () => {
  // A fixed pseudo-random order (LCG), small reads so that spans and the read limit both come up.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const log = new FakeLog();
  const ids = Array.from({ length: 300 }, (_, i) => i + 1);
  const rolledBack = new Set(ids.filter(() => random() < 0.05));
  for (const id of ids) log.held.add(id);
  const { hub, seen } = hubOn(log, 7);
  try {
    // Commits land out of order within a sliding window of 20 ids, as overlapping batches do.
    const pending = [...ids];
    while (pending.length > 0) {
      const i = Math.floor(random() * Math.min(20, pending.length));
      const [id] = pending.splice(i, 1);
      if (rolledBack.has(id)) log.held.delete(id);
      else log.commit(id);
      if (random() < 0.3) hub.wake("notify");
      if (random() < 0.1) await new Promise((r) => setTimeout(r, random() * 20));
    }
    await hub.waitForSyncTo(300);
    assert.deepEqual(seen, ids.filter((id) => !rolledBack.has(id)));
  } finally {
    await hub.close();
  }
});
