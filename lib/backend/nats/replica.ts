/**
 * The NATS backend's index: a copy, in memory, of the retained part of the
 * bucket's stream, as kine's revision log. Every process applies every stream
 * message in sequence order. Its rows are held by sequence (their id, so
 * revisions have gaps where messages were not rows: delete markers,
 * unreadable records) for values, compares and watch catch-ups; which row of
 * each key is live at a revision is the key index every log backend keeps
 * ({@link IndexedReads}), fed here with each row as it is applied, and it
 * answers Range, count and the txn logic's lists.
 *
 * JetStream keeps only `revHistory` messages per key; the copy drops the same
 * ones. Reads and watches that would need a dropped message get "compacted":
 * the copy's compact revision is the higher of the logical one (kine's
 * `compact_rev_key` record) and the history floor those drops leave.
 *
 * @module
 */
import { compacted, futureRevision } from "../errors.ts";
import { keyInRange } from "../keys.ts";
import { COMPACT_KEY } from "../logstructured/compact_key.ts";
import { isInternal, rowToEvent } from "../logstructured/events.ts";
import { IndexedReads, RowGone } from "../logstructured/indexed_reads.ts";
import type { EventRow, LogRow, Revisions } from "../logstructured/log.ts";
import type { Event, KeyValue, RangeRequest, RangeResult } from "../types.ts";
import type { Record } from "./codec.ts";

/** What a stream message is to the copy. */
export type Operation =
  | { type: "put"; record: Record }
  /** A KV delete marker or purge (rollup), as `nats kv del|purge` or upstream kine write them. */
  | { type: "delete" | "purge" }
  /** A message whose subject or value this codec cannot read. */
  | { type: "unreadable" };

/** A row of the copy: the log row and the value of the row it follows, as of when it came. */
interface Row extends LogRow {
  oldValue: Uint8Array;
}

const EMPTY = new Uint8Array(0);

interface Waiter {
  seq: number;
  resolve(): void;
}

export class Replica {
  /** Rows by sequence, in sequence order (the order they were applied). */
  readonly #rows = new Map<number, Row>();
  /** Sequences of the messages JetStream still holds per key, oldest first. */
  readonly #subjects = new Map<string, number[]>();
  readonly #reads = new IndexedReads({
    rows: (after, upTo, limit) => this.events(after, upTo, limit),
    values: (ids) => this.#values(ids),
    revisions: () => this.revisions(),
  });
  #applied = 0;
  /** The logical compact revision (kine's `compact_rev_key` record). */
  #compact = 0;
  /** Reads below this revision may miss history JetStream has dropped. */
  #floor = 0;
  #waiters: Waiter[] = [];
  /** The lowest sequence a waiter waits for (Infinity: none). */
  #nextWake = Infinity;

  constructor(private readonly revHistory: number) {}

  /** Highest stream sequence applied. */
  get applied(): number {
    return this.#applied;
  }

  /** Sequence of the last message of `key` (0 = none): the expected sequence of a write. */
  lastSeq(key: string): number {
    const seqs = this.#subjects.get(key);
    return seqs ? seqs[seqs.length - 1] : 0;
  }

  /** Keys and revisions the index holds (the start-up log line). */
  get stats(): { keys: number; revisions: number } {
    return this.#reads.stats;
  }

  revisions(): Revisions {
    return { current: this.#applied, compact: Math.max(this.#compact, this.#floor) };
  }

  /**
   * etcd's Range from the key index, at the request's revision or the
   * applied one. Everything it reads is read in this synchronous step (the
   * copy's values are in memory), so no message applied meanwhile can split it.
   */
  range(r: RangeRequest, knownCount?: number): Promise<RangeResult> {
    const { current, compact } = this.revisions();
    if (r.revision > current) return Promise.reject(futureRevision());
    if (r.revision > 0 && r.revision < compact) return Promise.reject(compacted());
    return this.#reads.range(r, r.revision > 0 ? r.revision : current, current, knownCount)
      // A row the index names that JetStream has dropped: history the stream no longer holds.
      .catch((err) => Promise.reject(err instanceof RowGone ? compacted() : err));
  }

  /** Live rows of `[start, end)` at `revision` (`end` "" = `start` alone), as the txn logic reads. */
  list(start: string, end: string | null, revision: number, limit = 0, keysOnly = false): LogRow[] {
    return this.#reads.list(start, end, revision, limit).map((kv) => this.#rowOf(kv, keysOnly));
  }

  /** Live keys of `[start, end)` at `revision`. */
  count(start: string, end: string | null, revision: number): number {
    return end === ""
      ? this.list(start, end, revision).length
      : this.#reads.count(start, end, revision);
  }

  /** Live rows with a lease at `revision`, values left out. */
  leased(revision: number): LogRow[] {
    const kvs = this.#reads.list("", null, revision, 0);
    return kvs.filter((kv) => kv.lease !== 0).map((kv) => this.#rowOf(kv, true));
  }

  /** The newest row of `key`, tombstones included; null if it has none. */
  latest(key: string): LogRow | null {
    const seqs = this.#subjects.get(key) ?? [];
    for (let i = seqs.length - 1; i >= 0; i--) {
      const row = this.#rows.get(seqs[i]);
      if (row) return row;
    }
    return null;
  }

  /**
   * Rows with `after < id <= upTo` (0: no bound) in id order, at most
   * `limit`, optionally only those of `[key, end)`, as watch catch-ups read them.
   */
  events(
    after: number,
    upTo: number,
    limit: number,
    key?: string,
    end?: string | null,
  ): EventRow[] {
    const top = upTo > 0 ? Math.min(upTo, this.#applied) : this.#applied;
    const out: EventRow[] = [];
    for (let id = after + 1; id <= top && out.length < limit; id++) {
      const row = this.#rows.get(id);
      if (!row || (key !== undefined && !keyInRange(row.name, key, end ?? "\0"))) continue;
      out.push(this.#event(row));
    }
    return out;
  }

  /** The row as the watch logic reads it: with the create revision and lease of its predecessor. */
  #event(row: Row): EventRow {
    const prev = row.created ? undefined : this.#rows.get(row.prevRevision);
    // Field by field: a spread is several times slower, and a replay does this per message.
    return {
      id: row.id,
      name: row.name,
      created: row.created,
      deleted: row.deleted,
      createRevision: row.createRevision,
      prevRevision: row.prevRevision,
      lease: row.lease,
      value: row.value,
      version: row.version,
      oldValue: row.oldValue,
      prevCreateRevision: prev ? (prev.created ? prev.id : prev.createRevision) : 0,
      prevLease: prev?.lease ?? 0,
    };
  }

  /** The row behind an index kv. */
  #rowOf(kv: KeyValue, keysOnly: boolean): LogRow {
    const row = this.#rows.get(kv.modRevision);
    if (!row) throw new RowGone();
    return keysOnly ? { ...row, value: EMPTY } : row;
  }

  #values(ids: number[]): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    for (const id of ids) {
      const row = this.#rows.get(id);
      if (row) out.set(id, row.value);
    }
    return out;
  }

  /**
   * Applies message `seq` of `key` (null: not a key this codec makes); returns
   * the event watchers see, if any. Messages at or below the applied sequence
   * (redeliveries) are ignored.
   */
  apply(seq: number, key: string | null, op: Operation): Event | undefined {
    if (seq <= this.#applied) return undefined;
    this.#applied = seq;
    let event: Event | undefined;
    if (key !== null) {
      let seqs = this.#subjects.get(key);
      if (!seqs) this.#subjects.set(key, seqs = []);
      if (op.type === "purge") this.#purge(seq, key, seqs);
      const row = this.#row(seq, key, seqs, op);
      if (row && key === COMPACT_KEY) this.#replaceBookkeeping(row);
      else if (row) {
        this.#rows.set(seq, row);
        if (!isInternal(row)) {
          event = rowToEvent(this.#event(row));
          this.#reads.apply([event]);
        }
      }
      seqs.push(seq);
      if (seqs.length > this.revHistory) this.#drop(key, seqs, seqs.length - this.revHistory);
    }
    this.#wake();
    return event;
  }

  /** The row a message adds to the log, if any. */
  #row(seq: number, key: string, seqs: number[], op: Operation): Row | undefined {
    if (op.type === "put") {
      const r = op.record;
      const prevRevision = r.prevRevision;
      let oldValue: Uint8Array = EMPTY;
      // The compaction record's prevRevision is the compact revision, not a row of its key.
      if (prevRevision > 0 && key !== COMPACT_KEY) {
        // The row it follows is gone from the stream: history before it is unknown.
        if (!seqs.includes(prevRevision)) this.#floor = Math.max(this.#floor, this.#applied);
        oldValue = this.#rows.get(prevRevision)?.value ?? EMPTY;
      }
      return {
        id: seq,
        name: key,
        created: r.created,
        deleted: r.deleted,
        createRevision: r.createRevision,
        prevRevision,
        lease: r.lease,
        value: r.value,
        version: r.version,
        oldValue,
      };
    }
    if (op.type === "unreadable") return undefined;
    // A marker deletes a live key (someone ran `nats kv del`); after a kine tombstone it is a no-op.
    const latest = this.latest(key);
    if (!latest || latest.deleted) return undefined;
    return {
      id: seq,
      name: key,
      created: false,
      deleted: true,
      createRevision: 0,
      prevRevision: latest.id,
      lease: 0,
      value: EMPTY,
      version: latest.version + 1,
      oldValue: latest.value,
    };
  }

  /** Drops the oldest `n` messages of a key, as JetStream does past its history limit. */
  #drop(key: string, seqs: number[], n: number): void {
    for (const seq of seqs.splice(0, n)) this.#rows.delete(seq);
    if (key !== COMPACT_KEY) {
      // A read at a revision before the oldest kept message would miss the dropped ones.
      this.#floor = Math.max(this.#floor, seqs[0] ?? this.#applied);
    }
  }

  /**
   * A purge (rollup) takes every message of the key out of the stream: the
   * key is gone from the copy, and from the index as of `seq` (reads below it
   * are below the floor the drop raises).
   */
  #purge(seq: number, key: string, seqs: number[]): void {
    this.#drop(key, seqs, seqs.length);
    const kv = { key, value: EMPTY, createRevision: 0, modRevision: seq, version: 0, lease: 0 };
    this.#reads.apply([{ type: "delete", kv }]);
  }

  /**
   * kine's compact revision record: one row, then the log below it is
   * compacted as the store's compaction does: every row superseded at or
   * before it, and tombstones at or before it.
   */
  #replaceBookkeeping(row: Row): void {
    for (const id of this.#subjects.get(COMPACT_KEY) ?? []) this.#rows.delete(id);
    this.#rows.set(row.id, row);
    const target = row.prevRevision;
    if (target <= this.#compact) return;
    this.#compact = target;
    const doomed: number[] = [];
    for (const r of this.#rows.values()) {
      if (r.id > target) break;
      if (r.name !== COMPACT_KEY && r.prevRevision !== 0) doomed.push(r.prevRevision);
      if (r.deleted) doomed.push(r.id);
    }
    for (const id of doomed) this.#rows.delete(id);
    this.#reads.compacted(target);
  }

  /** Resolves once the copy has applied `seq`, or after `timeoutMs` (then false). */
  waitFor(seq: number, timeoutMs: number): Promise<boolean> {
    if (this.#applied >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      const waiter = {
        seq,
        resolve: () => {
          clearTimeout(timer);
          resolve(true);
        },
      };
      this.#waiters.push(waiter);
      this.#nextWake = Math.min(this.#nextWake, seq);
    });
  }

  #wake(): void {
    // Most messages wake nobody (a replay has one waiter, for its last sequence).
    if (this.#applied < this.#nextWake) return;
    const still: Waiter[] = [];
    this.#nextWake = Infinity;
    for (const w of this.#waiters) {
      if (this.#applied >= w.seq) w.resolve();
      else {
        still.push(w);
        this.#nextWake = Math.min(this.#nextWake, w.seq);
      }
    }
    this.#waiters = still;
  }

  /** Wakes every waiter (on close). */
  release(): void {
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    this.#nextWake = Infinity;
  }
}
