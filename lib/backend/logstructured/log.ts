import type { KeyValue } from "../types.ts";

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
