/**
 * The NATS backend's index: a copy, in memory, of the retained part of the
 * bucket's stream, as kine's revision log. Every process applies every stream
 * message in sequence order; reads, compares and watch catch-ups are served
 * from it. Rows keep their stream sequence as id, so revisions have gaps where
 * messages were not rows (delete markers, lease-free bookkeeping).
 *
 * JetStream keeps only `revHistory` messages per key; the copy drops the same
 * ones. Reads and watches that would need a dropped message get "compacted":
 * the copy's compact revision is the higher of the logical one (kine's
 * `compact_rev_key` record) and the history floor those drops leave.
 *
 * @module
 */
import { MemoryStore } from "../memory/store.ts";
import { COMPACT_KEY } from "../logstructured/compact_key.ts";
import { isInternal, rowToEvent } from "../logstructured/events.ts";
import type { NewRow, Revisions } from "../logstructured/log.ts";
import type { Event } from "../types.ts";
import type { Record } from "./codec.ts";

/** What a stream message is to the copy. */
export type Operation =
  | { type: "put"; record: Record }
  /** A KV delete marker or purge (rollup), as `nats kv del|purge` or upstream kine write them. */
  | { type: "delete" | "purge" }
  /** A message whose subject or value this codec cannot read. */
  | { type: "unreadable" };

/** Synchronous reads of the copy, as the shared range, txn and watch logic use them. */
export type ReplicaReader =
  & Pick<MemoryStore["reader"], "list" | "count" | "leased" | "events" | "latest">
  & { revisions(): Revisions };

interface Waiter {
  seq: number;
  resolve(): void;
}

export class Replica {
  readonly #store = new MemoryStore();
  /** Sequences of the messages JetStream still holds per key, oldest first. */
  readonly #subjects = new Map<string, number[]>();
  #applied = 0;
  /** Reads below this revision may miss history JetStream has dropped. */
  #floor = 0;
  #waiters: Waiter[] = [];

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

  revisions(): Revisions {
    const { compact } = this.#store.reader.revisions();
    return { current: this.#applied, compact: Math.max(compact, this.#floor) };
  }

  /** The log as reads and the txn logic see it. */
  readonly reader: ReplicaReader = {
    revisions: () => this.revisions(),
    list: (...a) => this.#store.reader.list(...a),
    count: (...a) => this.#store.reader.count(...a),
    leased: (...a) => this.#store.reader.leased(...a),
    events: (...a) => this.#store.reader.events(...a),
    latest: (key) => this.#store.reader.latest(key),
  };

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
      const seqs = this.#subjects.get(key) ?? [];
      if (op.type === "purge") this.#drop(key, seqs, seqs.length);
      const row = this.#row(key, seqs, op);
      if (row) {
        if (key === COMPACT_KEY) this.#replaceBookkeeping(seq, row);
        else this.#store.insertAt(seq, row);
        const added = this.#store.reader.events(seq - 1, seq, 1)[0];
        if (added && !isInternal(added)) event = rowToEvent(added);
      }
      seqs.push(seq);
      this.#subjects.set(key, seqs);
      if (seqs.length > this.revHistory) this.#drop(key, seqs, seqs.length - this.revHistory);
    }
    this.#wake();
    return event;
  }

  /** The row a message adds to the log, if any. */
  #row(key: string, seqs: number[], op: Operation): NewRow | undefined {
    if (op.type === "put") {
      const { prevRevision } = op.record;
      // The row it follows is gone from the stream: history before it is unknown.
      if (prevRevision > 0 && !seqs.includes(prevRevision) && key !== COMPACT_KEY) {
        this.#floor = Math.max(this.#floor, this.#applied);
      }
      return { name: key, ...op.record };
    }
    if (op.type === "unreadable") return undefined;
    // A marker deletes a live key (someone ran `nats kv del`); after a kine tombstone it is a no-op.
    const latest = this.#store.reader.latest(key);
    if (!latest || latest.deleted) return undefined;
    return {
      name: key,
      created: false,
      deleted: true,
      createRevision: 0,
      prevRevision: latest.id,
      lease: 0,
      value: null,
      version: latest.version + 1,
    };
  }

  /** Drops the oldest `n` messages of a key, as JetStream does past its history limit. */
  #drop(key: string, seqs: number[], n: number): void {
    for (const seq of seqs.splice(0, n)) this.#store.removeRow(seq);
    if (key !== COMPACT_KEY) {
      // A read at a revision before the oldest kept message would miss the dropped ones.
      this.#floor = Math.max(this.#floor, seqs[0] ?? this.#applied);
    }
  }

  /** kine's compact revision record: one row, then the log below it is compacted. */
  #replaceBookkeeping(seq: number, row: NewRow): void {
    for (const id of this.#subjects.get(COMPACT_KEY) ?? []) this.#store.removeRow(id);
    this.#store.insertAt(seq, row);
    this.#store.compactTo(row.prevRevision);
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
    });
  }

  #wake(): void {
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) this.#applied >= w.seq ? w.resolve() : still.push(w);
    this.#waiters = still;
  }

  /** Wakes every waiter (on close). */
  release(): void {
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
  }
}
