/**
 * Plain-data types that cross the storage boundary. Everything here is
 * structured-clone friendly so the revision log could run in a worker.
 */

/** An etcd key-value pair as the backend reports it. Keys are UTF-8 strings. */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

/** Marker for `range_end = "\x00"`: every key at or after `key`. */
export const FROM_KEY = "\0";

export type SortOrder = "none" | "ascend" | "descend";
export type SortTarget = "key" | "version" | "create" | "mod" | "value";

/** A Range as etcd defines it; `end` empty = exact key, {@link FROM_KEY} = open-ended. */
export interface RangeRequest {
  key: string;
  end: string;
  limit: number;
  revision: number;
  keysOnly: boolean;
  countOnly: boolean;
  sortOrder: SortOrder;
  sortTarget: SortTarget;
  minModRevision: number;
  maxModRevision: number;
  minCreateRevision: number;
  maxCreateRevision: number;
  /**
   * For a caller that pages through the whole range itself: when the limit
   * cuts the list short, `count` is left at the number of kvs returned
   * instead of counting the keys after them.
   */
  skipCount?: boolean;
  /**
   * etcd's `serializable`: answer from what this process has applied (every
   * write it acknowledged included), without first learning the store's
   * latest revision as a linearizable read does.
   */
  serializable?: boolean;
}

/** A Range of `[key, end)` at the latest revision with no options set. */
export function plainRange(key: string, end: string): RangeRequest {
  return {
    key,
    end,
    limit: 0,
    revision: 0,
    keysOnly: false,
    countOnly: false,
    sortOrder: "none",
    sortTarget: "key",
    minModRevision: 0,
    maxModRevision: 0,
    minCreateRevision: 0,
    maxCreateRevision: 0,
  };
}

export interface RangeResult {
  revision: number;
  kvs: KeyValue[];
  count: number;
  more: boolean;
  /** With `more`, on a list in key order: the start key that continues it. */
  nextKey?: string;
}

export type CompareTarget = "version" | "create" | "mod" | "value" | "lease";
export type CompareResult = "equal" | "greater" | "less" | "not_equal";

export interface Compare {
  key: string;
  end: string;
  target: CompareTarget;
  result: CompareResult;
  /** Bytes for the value target, a number for the others. */
  operand: number | Uint8Array;
}

export interface PutOp {
  type: "put";
  key: string;
  value: Uint8Array;
  lease: number;
  prevKv: boolean;
  ignoreValue: boolean;
  ignoreLease: boolean;
}

export interface DeleteOp {
  type: "delete";
  key: string;
  end: string;
  prevKv: boolean;
}

export type Op =
  | { type: "range"; request: RangeRequest }
  | PutOp
  | DeleteOp
  | { type: "txn"; txn: Txn };

export interface Txn {
  compare: Compare[];
  success: Op[];
  failure: Op[];
}

export type OpResult =
  | { type: "range"; result: RangeResult }
  | { type: "put"; prevKv?: KeyValue }
  | { type: "delete"; deleted: number; prevKvs: KeyValue[] }
  | { type: "txn"; result: TxnResult };

/** `revision` is the store revision after the txn: its last write, or the current one. */
export interface TxnResult {
  revision: number;
  succeeded: boolean;
  responses: OpResult[];
}

export interface Status {
  revision: number;
  compactRevision: number;
  /** Bytes the store takes (SQLite: the file's pages, free ones included). */
  dbSize: number;
  /** Bytes holding data; `dbSize - dbSizeInUse` is what {@link Backend.defragment} may reclaim. */
  dbSizeInUse: number;
}

/** etcd's `HashKV`: a hash of every live key at `revision`. */
export interface KvHash {
  /** CRC-32C over each key, value, create/mod revision, version and lease, in key order. */
  hash: number;
  /** The revision hashed. */
  revision: number;
  compactRevision: number;
  /** The store's current revision when the hash was taken. */
  currentRevision: number;
}

/** One row of the revision log as stored, for a snapshot that copies it. */
export interface LogRecord {
  id: number;
  name: string;
  created: boolean;
  deleted: boolean;
  createRevision: number;
  prevRevision: number;
  lease: number;
  value: Uint8Array | null;
  oldValue: Uint8Array | null;
  version: number;
}

/** What a key-by-key DeleteRange answers: the revision after it, the count and the deleted kvs. */
export interface RangeDeleted {
  revision: number;
  deleted: number;
  prevKvs: KeyValue[];
}

/** What a backend can do beyond the core contract; a backend without them can do everything. */
export interface BackendCapabilities {
  /**
   * False where a writing txn may compare and write only one key (NATS: its
   * write is one conditional publish); {@link isSingleKeyTxn} tells which are.
   */
  multiKeyTxn: boolean;
  /** The backend's name, for refusals. */
  name: string;
}

/**
 * etcd's MVCC store: reads and atomic writes of the revision log. `txn` is
 * atomic: its compares and ops see one consistent state and its writes commit
 * together or not at all.
 */
export interface MvccStore {
  readonly capabilities?: BackendCapabilities;
  range(request: RangeRequest): Promise<RangeResult>;
  txn(txn: Txn): Promise<TxnResult>;
  /**
   * A DeleteRange over a range of keys, on a backend whose txns write one key
   * only (`multiKeyTxn` false), which deletes the keys one by one: each
   * deletion is its own revision and event, the whole is not atomic.
   */
  deleteRange?(op: DeleteOp): Promise<RangeDeleted>;
  /** Compacts history up to `revision`; returns the current revision. */
  compact(revision: number): Promise<number>;
  currentRevision(): number;
  /**
   * The store's current revision, read now: it covers every write acknowledged
   * by any process sharing the store (unlike {@link currentRevision}).
   */
  latestRevision(): Promise<number>;
  /**
   * etcd's ReadIndex: resolves once this process has applied every write that
   * any process sharing the store committed before the call, with a revision
   * covering them. Concurrent callers share one store lookup.
   */
  linearize(): Promise<number>;
}

/** The ordered stream of changes that watches (and every process's key index) follow. */
export interface ChangeStream {
  /**
   * Delivers every change of `[key, end)` (`end` "" = the key, {@link FROM_KEY} =
   * open-ended) from `startRevision` (0 = after the current revision) to `sink`.
   */
  watch(key: string, end: string, startRevision: number, sink: EventSink): Promise<WatchResult>;
  /** Resolves once every revision up to `revision` has been handed to watchers. */
  waitForSyncTo(revision: number): Promise<void>;
  /** The highest revision handed to watchers. */
  syncedRevision(): number;
}

/** etcd's Maintenance service as far as it concerns the store. */
export interface Maintenance {
  status(): Promise<Status>;
  /** Hashes the live keys at `revision` (0 = the current one). */
  hashKV(revision: number): Promise<KvHash>;
  /** Gives the engine's free space back where it can do so online; a no-op elsewhere. */
  defragment(): Promise<void>;
  /**
   * Every row of the log up to one revision, in id order and in pages, as one
   * consistent copy: compaction waits while a snapshot is read.
   */
  snapshot(): AsyncGenerator<LogRecord[]>;
  /**
   * Rows of the log with `after < id <= upTo` in id order, at most `limit`, as
   * stored (gap fills and compaction rows included), but never past what has
   * been handed to watchers: a copy that follows the log (kine migrate) reads
   * only rows that can no longer change.
   */
  logRows?(after: number, upTo: number, limit: number): Promise<LogRecord[]>;
}

/**
 * Persisted lease records (kine's own leases; see lib/lease). Read from the
 * store every time: other processes grant, renew and revoke too.
 */
export interface LeaseStore {
  /** Every lease record, or only `id`'s. */
  leaseRecords(id?: number): Promise<LeaseRecord[]>;
  /** Every live key that carries a lease (an ID, or a legacy TTL), at the current revision. */
  leasedKeys(): Promise<LeasedKeys>;
  /** Stores a new lease; false (nothing stored) when its ID exists. */
  createLease(lease: LeaseRecord): Promise<boolean>;
  /**
   * Extends a lease to `now` plus its TTL; undefined when it is gone or its
   * deadline has passed (an expired lease is never brought back).
   */
  renewLease(id: number, now: number): Promise<LeaseRecord | undefined>;
  /**
   * Deletes a lease record — with `expiredBy`, only if its deadline is at or
   * before it (a keep-alive elsewhere wins); returns whether it deleted it.
   */
  deleteLease(id: number, expiredBy?: number): Promise<boolean>;
}

/** Roles that one process sharing the store performs at a time (lease expiry, compaction). */
export interface RoleStore {
  /**
   * Takes or renews `role` for `ttlMs` from now; returns whether `holder`
   * holds it. A holder that stops renewing loses it when the time runs out;
   * `ttlMs` 0 gives it up.
   */
  claimRole(role: string, holder: string, ttlMs: number): Promise<boolean>;
}

/**
 * The storage contract the front end relies on: the MVCC store and its change
 * stream, maintenance, leases and roles. Every call takes and returns plain
 * data. Consumers that need less take the smaller interfaces.
 */
export interface Backend extends MvccStore, ChangeStream, Maintenance, LeaseStore, RoleStore {
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Keys with a lease and the revision they were read at. */
export interface LeasedKeys {
  revision: number;
  keys: { key: string; lease: number; modRevision: number }[];
}

/** A lease as stored: its granted TTL (s) and wall-clock deadline (ms since the epoch). */
export interface LeaseRecord {
  id: number;
  ttl: number;
  expiresAt: number;
}

/** A change of one key: `kv.createRevision === kv.modRevision` marks a create. */
export interface Event {
  type: "put" | "delete";
  kv: KeyValue;
  /** The previous value; absent for creates. */
  prevKv?: KeyValue;
}

/**
 * Receives event batches in revision order, each event once. A sink that
 * returns a promise asks the catch-up from history to wait for it (back-pressure);
 * live delivery never waits.
 */
export type EventSink = (events: Event[]) => void | Promise<void>;

export interface WatchResult {
  /** Set when `startRevision` is compacted: the watch did not start. */
  compactRevision?: number;
  /** Stops delivery; idempotent. */
  cancel(): void;
}
