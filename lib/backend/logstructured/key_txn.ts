/**
 * Txns on one key whose whole effect a store can compute in a single
 * statement: compares on the key, a put or delete of it on success, nothing
 * or a get of it on failure. These are kube-apiserver's writes (create:
 * `mod = 0` then a put, else a get; update and delete: `mod = X` then the
 * write, else a get) and plain Put and single-key DeleteRange. And bulk
 * loads: a txn of puts only, one multi-row statement. A store that runs them
 * without a round trip per txn or put offers {@link KeyTxnStore}; others run
 * every txn alike.
 */
import type { Compare, KeyValue, OpResult, RangeRequest, Txn, TxnResult } from "../types.ts";
import { APISERVER_COMPACT_KEY, COMPACT_KEY } from "./compact_key.ts";
import { type EventRow, type LogRow, rowToKv } from "./log.ts";

const EMPTY = new Uint8Array(0);

/** The write of a {@link KeyTxn}'s success branch. */
export type KeyWrite =
  | { type: "put"; value: Uint8Array; lease: number; prevKv: boolean }
  | { type: "delete"; prevKv: boolean };

/** A txn on one key, as {@link keyTxnOf} reads it. */
export interface KeyTxn {
  /** The key as stored. */
  name: string;
  /** Every compare is on `name` alone. */
  compare: Compare[];
  /** What the txn writes when its compares hold. */
  success: KeyWrite;
  /** Whether the failure branch gets the key (else it is empty). */
  failureGet: boolean;
}

/** What the store's statement saw and did for one {@link KeyTxn}. */
export interface KeyTxnRow {
  /** The key's latest row before the txn (tombstones included); null if none. */
  latest: LogRow | null;
  /** Whether the compares held on `latest`. */
  succeeded: boolean;
  /** The id of the row written; null if nothing was written. */
  written: number | null;
  /** The log's highest id when the statement ran, before its own row. */
  current: number;
}

/** One put of a bulk txn ({@link bulkPutsOf}). */
export interface BulkPut {
  name: string;
  value: Uint8Array;
  lease: number;
}

/**
 * What a writer knows of a bulk put's key before the load: its newest row,
 * live (the key index's), or none (id 0: the key has no row, or only rows
 * compaction removed).
 */
export interface BulkPrev {
  /** The key's newest row id; 0 if none. */
  id: number;
  /** That row's create revision, version and lease (zeros if none). */
  createRevision: number;
  version: number;
  lease: number;
  /** That row's value; null where none, undefined where the store must read it by id. */
  value: Uint8Array | null | undefined;
}

/** Bulk loads' rows as the writer computed them ({@link KeyTxnStore.writeKnownBulk}). */
export interface BulkKnown {
  /** Per load, per put, its key's newest row before the load. */
  prev: BulkPrev[][];
  /** The highest revision the writer's knowledge covers: every row up to it, none above. */
  position: number;
}

/** A store that runs {@link KeyTxn}s and bulk loads in one round trip per transaction. */
export interface KeyTxnStore {
  /**
   * Runs bulk txns' puts, each txn's as one multi-row insert, in order in one
   * transaction of their own and one round trip; returns each txn's revision
   * (its highest row). Another writer's row on one of the keys fails them
   * all (a `conflict`), and nothing is written.
   */
  writeBulk(loads: BulkPut[][]): Promise<number[]>;
  /**
   * Runs bulk loads (their keys distinct) as {@link writeBulk} does, each row
   * computed from `known` instead of read from the store: plain multi-row
   * inserts that read nothing of the log but its highest id. Returns each
   * load's row ids in order, or null, having written nothing, where the log
   * holds a row above `known.position`; throws, having written nothing, where
   * another writer took a key's slot meanwhile (the unique
   * `(name, prev_revision)` index).
   */
  writeKnownBulk?(loads: BulkPut[][], known: BulkKnown): Promise<number[][] | null>;
  /**
   * Runs the txns in order in one write transaction and commits it; later
   * txns see earlier ones' rows. A txn whose write lost to another writer
   * (its compares held but no row went in) is reported as written: null, and
   * must be run again; the others are committed. Per txn, either its row or
   * an error that is that txn's alone (a key the engine cannot store).
   */
  writeKeyTxns(txns: KeyTxn[]): Promise<(KeyTxnRow | Error)[]>;
}

function isPlainGet(r: RangeRequest, key: string): boolean {
  return r.key === key && r.end === "" && r.revision === 0 && !r.keysOnly && !r.countOnly &&
    r.minModRevision <= 0 && r.maxModRevision <= 0 && r.minCreateRevision <= 0 &&
    r.maxCreateRevision <= 0;
}

function keyWrite(ops: Txn["success"], key: string): KeyWrite | null {
  if (ops.length !== 1) return null;
  const op = ops[0];
  if (op.type === "put") {
    if (op.key !== key || op.ignoreValue || op.ignoreLease) return null;
    return { type: "put", value: op.value, lease: op.lease, prevKv: op.prevKv };
  }
  if (op.type === "delete" && op.key === key && op.end === "") {
    return { type: "delete", prevKv: op.prevKv };
  }
  return null;
}

/**
 * The {@link KeyTxn} a txn is, or null when it needs the general path (more
 * than one key or op, ranges, nested txns, `ignore_*`, no write on success, a
 * write on failure, or kine's and the apiserver's compaction keys, whose
 * stored value differs from the one written).
 */
export function keyTxnOf(txn: Txn): KeyTxn | null {
  const op = txn.success[0];
  const key = op?.type === "put" || op?.type === "delete" ? op.key : null;
  if (key === null || key === COMPACT_KEY || key === APISERVER_COMPACT_KEY) return null;
  if (txn.compare.some((c) => c.key !== key || c.end !== "")) return null;
  const success = keyWrite(txn.success, key);
  if (!success) return null;
  const f = txn.failure;
  const failureGet = f.length === 1 && f[0].type === "range" && isPlainGet(f[0].request, key);
  if (f.length > 0 && !failureGet) return null;
  return { name: key, compare: txn.compare, success, failureGet };
}

/**
 * The puts of a bulk load — a txn without compares whose success branch is
 * only puts (at least two, no `prev_kv` or `ignore_*`, not the compaction
 * keys) — or null for any other txn. A txn writes a key once at most.
 */
export function bulkPutsOf(txn: Txn): BulkPut[] | null {
  if (txn.compare.length > 0 || txn.success.length < 2) return null;
  const puts: BulkPut[] = [];
  for (const op of txn.success) {
    if (
      op.type !== "put" || op.prevKv || op.ignoreValue || op.ignoreLease ||
      op.key === COMPACT_KEY || op.key === APISERVER_COMPACT_KEY
    ) return null;
    puts.push({ name: op.key, value: op.value, lease: op.lease });
  }
  return puts;
}

/** The etcd answer to a {@link KeyTxn} from what its statement saw and did. */
export function keyTxnResult(k: KeyTxn, row: KeyTxnRow): TxnResult {
  const latest = row.latest;
  const live = latest && !latest.deleted ? rowToKv(latest) : null;
  const kvs: KeyValue[] = live ? [live] : [];
  const op = k.success;
  const responses: OpResult[] = [];
  if (!row.succeeded) {
    if (k.failureGet) {
      responses.push({
        type: "range",
        result: { revision: row.current, kvs, count: kvs.length, more: false },
      });
    }
  } else if (op.type === "put") {
    responses.push({ type: "put", prevKv: op.prevKv && live ? live : undefined });
  } else {
    responses.push({
      type: "delete",
      deleted: row.written === null ? 0 : 1,
      prevKvs: op.prevKv && row.written !== null ? kvs : [],
    });
  }
  return { revision: row.written ?? row.current, succeeded: row.succeeded, responses };
}

/** True when the txn's write lost to another writer and it must run again. */
export function keyTxnLost(k: KeyTxn, row: KeyTxnRow): boolean {
  if (row.written !== null || !row.succeeded) return false;
  return k.success.type === "put" || (row.latest !== null && !row.latest.deleted);
}

/**
 * The row a committed {@link KeyTxn} wrote, as the watch reads rows back
 * (`EventRow`), computed as the store's statement computed it from the key's
 * latest row (whose version the store counted where upstream kine left none);
 * null if it wrote none.
 */
export function keyTxnEventRow(k: KeyTxn, row: KeyTxnRow): EventRow | null {
  const id = row.written;
  const o = row.latest;
  if (id === null) return null;
  const live = o !== null && !o.deleted;
  const previous = {
    prevRevision: o?.id ?? 0,
    oldValue: o?.value ?? EMPTY,
    prevCreateRevision: o === null ? 0 : o.created ? o.id : o.createRevision,
    prevLease: o?.lease ?? 0,
  };
  const version = live ? o.version + 1 : 1;
  const w = k.success;
  if (w.type === "delete") {
    return {
      id,
      name: k.name,
      created: false,
      deleted: true,
      createRevision: 0,
      lease: 0,
      value: EMPTY,
      version,
      ...previous,
    };
  }
  return {
    id,
    name: k.name,
    created: !live,
    deleted: false,
    createRevision: live ? previous.prevCreateRevision : 0,
    lease: w.lease,
    value: w.value,
    version,
    ...previous,
  };
}
