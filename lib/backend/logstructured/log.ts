import type { KeyValue, LeaseRecord } from "../types.ts";
import type { KeyTxnStore } from "./key_txn.ts";

/** Values or promises: SQLite answers synchronously, network databases do not. */
export type MaybePromise<T> = T | Promise<T>;

/** One row of the revision log as the shared logic needs it. */
export interface LogRow {
  id: number;
  name: string;
  created: boolean;
  deleted: boolean;
  createRevision: number;
  prevRevision: number;
  lease: number;
  value: Uint8Array;
  /** Number of rows of this key since its creation (a lower bound after compaction). */
  version: number;
}

/** A row to append; `id` and `old_value` are assigned by the log. */
export interface NewRow {
  name: string;
  created: boolean;
  deleted: boolean;
  createRevision: number;
  prevRevision: number;
  lease: number;
  value: Uint8Array | null;
  /**
   * The key's version this row records: 1 for a create, the previous row's
   * plus one for an update or a tombstone; 0 for rows no client sees.
   */
  version: number;
  /**
   * The value of the row at `prevRevision` (null for a tombstone), where the
   * writer has read it; else the store reads it.
   */
  oldValue?: Uint8Array | null;
}

export interface Revisions {
  current: number;
  compact: number;
}

/**
 * Read access to the log at a pinned revision. `end` = "" means the exact key,
 * `null` means every key at or after `start`; otherwise `[start, end)`.
 * Only live keys (latest row at or before `revision` not a tombstone) are seen.
 */
export interface LogReader {
  revisions(): MaybePromise<Revisions>;
  list(
    start: string,
    end: string | null,
    revision: number,
    limit: number,
    keysOnly: boolean,
  ): MaybePromise<LogRow[]>;
  count(start: string, end: string | null, revision: number): MaybePromise<number>;
  /** Live rows with a lease at `revision`, values left out. */
  leased(revision: number): MaybePromise<LogRow[]>;
}

/**
 * What the key index reads of the log: every row's metadata in id order (its
 * start-up scan), and values by row id (the values a Range returns).
 */
export interface IndexReader {
  /** Rows with `after < id <= upTo` in id order, at most `limit`, values left out. */
  rows(after: number, upTo: number, limit: number): MaybePromise<LogRow[]>;
  /** The values of rows `ids`; a row the store no longer holds is missing from the map. */
  values(ids: number[]): MaybePromise<Map<number, Uint8Array>>;
}

/** A write transaction: reads see the transaction's own earlier appends. */
export interface LogTx extends LogReader {
  /** Latest row of `key`, tombstones included; null if the key has no rows. */
  latest(key: string): MaybePromise<LogRow | null>;
  /** Appends a row, copying `old_value` from `prevRevision`; returns the new id. */
  append(row: NewRow): MaybePromise<number>;
}

const EMPTY = new Uint8Array(0);

/** The etcd KeyValue for a live row. */
export function rowToKv(row: LogRow, keysOnly = false): KeyValue {
  return {
    key: row.name,
    value: keysOnly ? EMPTY : row.value,
    createRevision: row.created ? row.id : row.createRevision,
    modRevision: row.id,
    version: row.version,
    lease: row.lease,
  };
}

/** A row as the watch pipeline reads it: with the previous row's value and metadata. */
export interface EventRow extends LogRow {
  oldValue: Uint8Array;
  /** Create revision and lease of the previous row, when it still exists. */
  prevCreateRevision: number;
  prevLease: number;
}

/** Reads the log in id order for the watch pipeline. */
export interface EventReader {
  /**
   * Rows with `after < id <= upTo` (no upper bound when `upTo` is 0) in id
   * order, optionally only those of `[key, end)` ("" = the key, null = open-ended).
   */
  events(
    after: number,
    upTo: number,
    limit: number,
    key?: string,
    end?: string | null,
  ): MaybePromise<EventRow[]>;
}

/** What the poll loop reads the log with: {@link EventReader}, and missing ids by id. */
export interface PollReader extends EventReader {
  /**
   * The rows of `ids` (ascending, at most 1,024; those that exist) as
   * {@link events} reads them; `waiting`, once every transaction that holds
   * one of them has ended (committed or rolled back), where {@link waits}.
   */
  eventsOf(ids: number[], waiting: boolean): MaybePromise<EventRow[]>;
  /**
   * The rows of `ids` (as {@link eventsOf} without waiting) and, in the same
   * read, the first `limit` rows above `after` (every id in `ids` is below
   * it), in id order: once missing ids have settled, the rows that came
   * above those already held arrive with them, not a round trip later.
   */
  eventsOfAndAfter?(ids: number[], after: number, limit: number): MaybePromise<EventRow[]>;
  /** True where {@link eventsOf} can wait for the transactions holding its ids (MySQL). */
  readonly waits?: boolean;
}

/**
 * A gap fill found one of its ids held by a transaction that has not ended:
 * its row may still commit, so nothing was filled and the poll loop looks
 * again later.
 */
export class GapHeld extends Error {
  constructor() {
    super("a missing id is held by a transaction in flight");
  }
}

/** A write transaction with savepoints and the log's maintenance operations. */
export interface LogWriteTx extends LogTx {
  savepoint(): MaybePromise<void>;
  releaseSavepoint(): MaybePromise<void>;
  rollbackToSavepoint(): MaybePromise<void>;
  /** Ids, create flags and prev revisions of every row named `key`. */
  rowsNamed(key: string): MaybePromise<{ id: number; prevRevision: number }[]>;
  deleteRow(id: number): MaybePromise<void>;
  /**
   * Moves the recorded compact revision from `from` to `target` and deletes
   * rows superseded at or before `target` and tombstones up to it. Returns
   * false, changing nothing, when the recorded revision is no longer `from`
   * (another process compacted meanwhile): the move is a conditional update,
   * so two processes never both run one batch.
   */
  compactTo(from: number, target: number): MaybePromise<boolean>;
  /**
   * How far after `from` (up to `target`) a compaction batch may go to
   * delete the rows of at most `rows` revisions that supersede an earlier row
   * (each deletes that row, a tombstone itself too): the deletes, not the
   * revisions, are what a batch's time grows with, and history mixes spans
   * that delete nothing (a bulk load's creates) with spans that delete a row
   * per revision. `cut` is true when `rows` stopped it short of `target`.
   * Stores whose deletes cost next to nothing leave it out.
   */
  compactBound?(
    from: number,
    target: number,
    rows: number,
  ): MaybePromise<{ target: number; cut: boolean }>;
  /**
   * Inserts a `gap-<id>` tombstone for each missing id, in one statement;
   * an id whose real row exists is left alone. Returns how many tombstones it
   * inserted. Where the engine can tell without waiting (PostgreSQL, MySQL),
   * an id held by another transaction still in flight throws {@link GapHeld}
   * at once instead of waiting for that transaction to end.
   */
  fill(ids: number[]): MaybePromise<number>;
  /** A lease record, read inside the transaction; null if there is none. */
  lease(id: number): MaybePromise<LeaseRecord | null>;
  saveLease(lease: LeaseRecord): MaybePromise<void>;
  deleteLease(id: number): MaybePromise<void>;
  /**
   * Takes or renews the named role for `holder` until `until` (ms since the
   * epoch) if it is free, expired (before `now`) or already `holder`'s;
   * returns whether `holder` holds it.
   */
  claimRole(role: string, holder: string, now: number, until: number): MaybePromise<boolean>;
}

/**
 * What a store error means, decided in one place per engine:
 * - `conflict`: a unique-constraint violation on (name, prev_revision) — a concurrent writer won;
 * - `gap_race`: the insert lost its id to the poll loop's gap fill — run it again;
 * - `retry`: serialization failure or deadlock — the transaction may be run again as is;
 * - `connection`: the database cannot be reached (or went away mid-statement);
 * - `other`: anything else.
 * `code` is the engine's own code (SQLSTATE, errno, SQLite code) for logs and metrics.
 */
export interface StoreFailure {
  kind: "conflict" | "gap_race" | "retry" | "connection" | "other";
  code: string;
}

/** How a write transaction runs. */
export interface WriteOptions {
  /**
   * Housekeeping (role renewals, lease expiry) that must never hold up a
   * client's write: where a write waiting for another process's lock blocks
   * the whole process (SQLite), it fails at once instead, and is tried again
   * at its next turn.
   */
  background?: boolean;
}

/** Where a log lives: SQL tables, or memory. Everything above it is shared. */
export interface LogStore {
  /** Autocommit reads, committed data only. */
  readonly reader: LogReader & PollReader & IndexReader;
  /** Runs `fn` in one write transaction; commits if it resolves, rolls back if it throws. */
  write<T>(fn: (tx: LogWriteTx) => Promise<T>, options?: WriteOptions): Promise<T>;
  /** How long the poll loop waits for a missing id to commit before filling it (ms). */
  readonly fillRetryDelayMs: number;
  /**
   * How often the poll loop looks for other processes' writes (ms) unless
   * configured; the safety net where {@link notifier} wakes it.
   */
  readonly pollIntervalMs: number;
  /**
   * The shortest poll interval, where the timer keeps finding other
   * processes' rows (ms); absent = 1 ms.
   */
  readonly busyPollIntervalMs?: number;
  /**
   * True when write transactions may run side by side (a connection pool);
   * false where they must take turns on one connection (SQLite, memory).
   */
  readonly parallelWrites: boolean;
  /** Cross-process commit wake-ups, where the engine has them (PostgreSQL LISTEN/NOTIFY). */
  readonly notifier?: CommitNotifier;
  /** True where reading values by row id costs no more than a lookup in memory: no value cache. */
  readonly valuesInMemory?: boolean;
  /** What a failed store call means for the caller (see {@link StoreFailure}). */
  classify(err: unknown): StoreFailure;
  /** Bytes holding data. */
  size(): Promise<number>;
  /** Bytes the store takes, free space included; stores without free space leave it out. */
  allocatedSize?(): Promise<number>;
  /**
   * Gives free space back to the file system, each step inside `exclusive`
   * (which keeps it apart from write transactions); stores with nothing to
   * reclaim leave it out.
   */
  defragment?(exclusive: <T>(step: () => Promise<T>) => Promise<T>): Promise<void>;
  /** Run after a compaction (SQLite: WAL checkpoint). */
  afterCompact(): Promise<void>;
  /**
   * Runs single-key txns a statement each, a batch in one round trip (see
   * `key_txn.ts`); stores without it run every txn through {@link write}.
   */
  writeKeyTxns?: KeyTxnStore["writeKeyTxns"];
  /** A bulk load in one round trip (see `key_txn.ts`); stores without it use {@link write}. */
  writeBulk?: KeyTxnStore["writeBulk"];
  /** A bulk load whose rows the writer computed (see `key_txn.ts`). */
  writeKnownBulk?: KeyTxnStore["writeKnownBulk"];
  /** Lease records (only `id`'s when given), read outside any transaction. */
  leaseRecords(id?: number): Promise<LeaseRecord[]>;
  close(): Promise<void>;
}

/** Tells other processes on the store that something committed, and hears them. */
export interface CommitNotifier {
  /**
   * Announces a commit up to `revision` (its highest row); fire and forget,
   * coalesced while one is on its way.
   */
  announce(revision: number): void;
  /**
   * Calls `wake` for every announcement by another process, with its
   * revision (0 when it carried none): this process's own commits reach its
   * watch hub from the write itself; resolves once listening.
   */
  listen(wake: (revision: number) => void): Promise<void>;
}
