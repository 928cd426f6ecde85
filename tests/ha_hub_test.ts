/**
 * The poll loop against a log whose ids commit out of order, as several
 * servers' transactions do on one database: rows above a missing id are
 * published once, in order, when it commits, and are not read again while
 * they wait; an id held by a transaction in flight is never filled over.
 */
import assert from "node:assert/strict";
import { type HubLog, WatchHub } from "../lib/backend/logstructured/watch_hub.ts";
import type { EventRow } from "../lib/backend/logstructured/log.ts";
import { silentLogger } from "../lib/log/mod.ts";
import type { Event } from "../lib/backend/types.ts";

/** A log of committed rows; ids not committed yet are simply absent. */
class FakeLog {
  readonly committed = new Map<number, EventRow>();
  /** Ids a transaction in flight holds: a fill meets them and gives up. */
  readonly held = new Set<number>();
  rowsRead = 0;
  /** Reads of every row above a position (`events`), as opposed to reads of given ids. */
  rangeReads = 0;
  fills: number[][] = [];

  commit(id: number): void {
    this.held.delete(id);
    this.committed.set(id, row(id, `/k/${id}`));
  }

  /** The transaction holding `id` rolled back: the id stays missing. */
  rollBack(id: number): void {
    this.held.delete(id);
  }

  /** The committed rows of `after < id <= upTo` (0 = no bound), in id order. */
  read(after: number, upTo: number, limit: number): EventRow[] {
    const ids = [...this.committed.keys()]
      .filter((id) => id > after && (upTo === 0 || id <= upTo))
      .sort((a, b) => a - b).slice(0, limit);
    this.rowsRead += ids.length;
    return ids.map((id) => this.committed.get(id)!);
  }

  revisions(): { current: number; compact: number } {
    return { current: Math.max(0, ...this.committed.keys()), compact: 0 };
  }

  /** The committed rows of `ids`. */
  readIds(ids: number[]): EventRow[] {
    const rows = ids.flatMap((id) => this.committed.get(id) ?? []);
    this.rowsRead += rows.length;
    return rows;
  }

  readonly reader: HubLog["reader"] = {
    events: (after: number, upTo: number, limit: number) => {
      this.rangeReads++;
      return this.read(after, upTo, limit);
    },
    eventsOf: (ids: number[]) => this.readIds(ids),
    eventsOfAndAfter: (ids: number[], after: number, limit: number) => [
      ...this.readIds(ids),
      ...this.read(after, 0, limit),
    ],
    revisions: () => this.revisions(),
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

/**
 * A log whose reads can wait for the transactions holding the ids they
 * cover, as MySQL's locking read does: such a read returns once each of
 * them has committed or rolled back.
 */
class WaitingLog extends FakeLog {
  #ended: (() => void)[] = [];
  /** Waiting reads made. */
  waits = 0;

  override commit(id: number): void {
    super.commit(id);
    this.#end();
  }

  override rollBack(id: number): void {
    super.rollBack(id);
    this.#end();
  }

  #end(): void {
    const ended = this.#ended;
    this.#ended = [];
    for (const resolve of ended) resolve();
  }

  override readonly reader: HubLog["reader"] = {
    events: (after: number, upTo: number, limit: number) => this.read(after, upTo, limit),
    eventsOf: async (ids: number[], waiting: boolean): Promise<EventRow[]> => {
      if (waiting) this.waits++;
      while (waiting && ids.some((id) => this.held.has(id))) {
        await new Promise<void>((resolve) => this.#ended.push(resolve));
      }
      return this.readIds(ids);
    },
    waits: true,
    revisions: () => this.revisions(),
  };
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
    // 7..20 were read once: later reads covered only the missing ids, then 21.
    assert.equal(log.rowsRead - read, 3, "rows read again");
  } finally {
    await hub.close();
  }
});

Deno.test("once missing ids settle, the rows above those held come in the same read", async () => {
  const log = new FakeLog();
  for (const id of [1, 3, 4]) log.commit(id);
  log.held.add(2);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(1);
    log.commit(2);
    log.commit(5);
    log.commit(6);
    const ranges = log.rangeReads;
    hub.wake("notify");
    await hub.waitForSyncTo(6);
    assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
    assert.equal(log.rangeReads - ranges, 0, "a read of the rows above came a round trip later");
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

for (const waits of [false, true]) {
  Deno.test(`ids committing in any order, some never: every row is published once, in id order${waits ? " (a reader that waits)" : ""}`, async () => {
    // A fixed pseudo-random order (LCG), small reads so that spans and the read limit both come up.
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const log = waits ? new WaitingLog() : new FakeLog();
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
        if (rolledBack.has(id)) log.rollBack(id);
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
}

Deno.test("a reader that waits: a held id is published as its transaction commits, without fills or timers", async () => {
  const log = new WaitingLog();
  for (const id of [1, 3, 4]) log.commit(id);
  log.held.add(2);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(1);
    // Nothing wakes the loop again: the waiting read returns once 2 commits.
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(hub.polled, 1);
    log.commit(2);
    await hub.waitForSyncTo(4);
    assert.deepEqual(seen, [1, 2, 3, 4]);
    assert.deepEqual(log.fills, [], "a fill was tried");
    assert.equal(log.waits, 1);
  } finally {
    await hub.close();
  }
});

Deno.test("a reader that waits: an id rolled back is filled once it has stood, and never shown", async () => {
  const log = new WaitingLog();
  for (const id of [1, 3]) log.commit(id);
  log.held.add(2);
  const { hub, seen } = hubOn(log);
  try {
    await hub.waitForSyncTo(1);
    log.rollBack(2);
    await hub.waitForSyncTo(3);
    assert.deepEqual(seen, [1, 3]);
    assert.deepEqual(log.fills, [[2]]);
    assert.equal(log.committed.get(2)?.name, "gap-2");
  } finally {
    await hub.close();
  }
});
