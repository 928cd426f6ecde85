import { BackendError, ERR_DUPLICATE_KEY } from "../errors.ts";
import { keyInRange } from "../keys.ts";
import {
  type Compare,
  type DeleteOp,
  FROM_KEY,
  type KeyValue,
  type Op,
  type OpResult,
  plainRange,
  type PutOp,
  type Txn,
  type TxnResult,
} from "../types.ts";
import {
  APISERVER_COMPACT_KEY,
  decodeCompactValue,
  encodeCompactValue,
  presentKv,
  redirectKey,
} from "./compact_key.ts";
import { type EventRow, type LogRow, type LogTx, type NewRow, rowToKv } from "./log.ts";
import { rangeLog } from "./range.ts";

const EMPTY = new Uint8Array(0);

/**
 * etcd rejects a txn whose branch puts one key twice or puts a key that a
 * delete in the same branch covers (nested txns included).
 */
export function checkTxn(txn: Txn): void {
  for (const branch of [txn.success, txn.failure]) checkBranch(branch);
}

function duplicate(): BackendError {
  return new BackendError("duplicate_key", ERR_DUPLICATE_KEY);
}

/** Puts and deletes of a branch; a nested txn contributes both of its branches. */
function checkBranch(ops: Op[]): { puts: Set<string>; deletes: DeleteOp[] } {
  const puts = new Set<string>();
  const deletes: DeleteOp[] = [];
  for (const op of ops) {
    if (op.type === "put") {
      if (puts.has(op.key)) throw duplicate();
      puts.add(op.key);
    } else if (op.type === "delete") {
      deletes.push(op);
    } else if (op.type === "txn") {
      const inner = [checkBranch(op.txn.success), checkBranch(op.txn.failure)];
      const innerPuts = new Set([...inner[0].puts, ...inner[1].puts]);
      for (const key of innerPuts) {
        if (puts.has(key)) throw duplicate();
      }
      innerPuts.forEach((key) => puts.add(key));
      deletes.push(...inner[0].deletes, ...inner[1].deletes);
    }
  }
  for (const d of deletes) {
    for (const key of puts) if (keyInRange(key, d.key, d.end)) throw duplicate();
  }
  return { puts, deletes };
}

/** The keys a txn compares and writes (as stored), and whether it writes or spans a range. */
export function txnKeys(txn: Txn): { keys: Set<string>; writes: boolean; ranged: boolean } {
  const out = { keys: new Set<string>(), writes: false, ranged: false };
  const visit = (t: Txn) => {
    for (const c of t.compare) {
      if (c.end !== "") out.ranged = true;
      out.keys.add(redirectKey(c.key));
    }
    for (const op of [...t.success, ...t.failure]) {
      if (op.type === "txn") visit(op.txn);
      else if (op.type === "put" || op.type === "delete") {
        out.writes = true;
        if (op.type === "delete" && op.end !== "") out.ranged = true;
        out.keys.add(redirectKey(op.key));
      }
    }
  };
  visit(txn);
  return out;
}

/**
 * True if a txn writes nothing, or compares and writes one key only (no range
 * compare or range delete): what a backend without multi-key txns can run.
 */
export function isSingleKeyTxn(txn: Txn): boolean {
  const { keys, writes, ranged } = txnKeys(txn);
  return !writes || (!ranged && keys.size <= 1);
}

/** The refusal of a txn {@link isSingleKeyTxn} rejects, on a backend named `name`. */
export function multiKeyUnsupported(name: string): BackendError {
  return new BackendError(
    "failed_precondition",
    `multi-key transactions are not supported on the ${name} backend`,
  );
}

function compareNumbers(a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return compareNumbers(a.length, b.length);
}

/** A missing key compares as the zero KeyValue (etcd), except on value. */
const ZERO_KV: KeyValue = {
  key: "",
  value: EMPTY,
  createRevision: 0,
  modRevision: 0,
  version: 0,
  lease: 0,
};

function compareKv(c: Compare, kv: KeyValue): boolean {
  let order: number;
  switch (c.target) {
    case "value":
      order = compareBytes(kv.value, c.operand as Uint8Array);
      break;
    case "version":
      order = compareNumbers(kv.version, c.operand as number);
      break;
    case "create":
      order = compareNumbers(kv.createRevision, c.operand as number);
      break;
    case "mod":
      order = compareNumbers(kv.modRevision, c.operand as number);
      break;
    case "lease":
      order = compareNumbers(kv.lease, c.operand as number);
      break;
  }
  switch (c.result) {
    case "equal":
      return order === 0;
    case "not_equal":
      return order !== 0;
    case "greater":
      return order > 0;
    case "less":
      return order < 0;
  }
}

/**
 * Whether compare `c` holds on `kvs`, the live kvs of its key or range:
 * on every one of them, or on the zero KeyValue when there are none.
 */
export function compareHolds(c: Compare, kvs: KeyValue[]): boolean {
  if (kvs.length === 0) return c.target !== "value" && compareKv(c, ZERO_KV);
  return kvs.every((kv) => compareKv(c, kv));
}

/** Longest stretch a write batch runs without letting other requests in, ms. */
const SLICE_MS = 4;

/**
 * Hands the event loop back now and then during a long write batch: SQLite
 * answers synchronously, so a txn of thousands of rows would otherwise hold
 * every read, watch and keep-alive for its whole duration.
 */
export class Pacer {
  #since = performance.now();

  async pace(): Promise<void> {
    if (performance.now() - this.#since < SLICE_MS) return;
    // A timer, not setImmediate: under Deno only a timer lets pending socket reads in.
    await new Promise((resolve) => setTimeout(resolve, 0));
    this.#since = performance.now();
  }
}

/** Runs one txn inside an open write transaction; every write appends one row. */
export class TxnRunner {
  #last = 0;
  /**
   * Latest rows read by this txn, until it writes their key: kube's writes
   * compare a key's mod revision and then write it, one read for both.
   */
  readonly #latest = new Map<string, LogRow | null>();
  /**
   * The rows this txn appended, in id order, as the watch pipeline reads
   * them back: the writer already holds every column (the previous row is
   * the one it read), so its own commits reach watchers without a read.
   */
  readonly appended: EventRow[] = [];
  constructor(private readonly tx: LogTx, private readonly pacer = new Pacer()) {}

  async #readLatest(name: string): Promise<LogRow | null> {
    let row = this.#latest.get(name);
    if (row === undefined) {
      row = await this.tx.latest(name);
      this.#latest.set(name, row);
    }
    return row;
  }

  async #liveKvs(key: string, end: string): Promise<KeyValue[]> {
    if (end === "") {
      const row = await this.#readLatest(redirectKey(key));
      return row && !row.deleted ? [presentKv(rowToKv(row))] : [];
    }
    return (await rangeLog(this.tx, plainRange(key, end))).kvs;
  }

  async #evaluate(c: Compare): Promise<boolean> {
    return compareHolds(c, await this.#liveKvs(c.key, c.end));
  }

  async run(txn: Txn): Promise<TxnResult> {
    let succeeded = true;
    for (const c of txn.compare) {
      if (!(await this.#evaluate(c))) {
        succeeded = false;
        break;
      }
    }
    const responses: OpResult[] = [];
    for (const op of succeeded ? txn.success : txn.failure) responses.push(await this.#op(op));
    const revision = this.#last || (await this.tx.revisions()).current;
    return { revision, succeeded, responses };
  }

  async #op(op: Op): Promise<OpResult> {
    switch (op.type) {
      case "range":
        return { type: "range", result: await rangeLog(this.tx, op.request) };
      case "put":
        return await this.#put(op);
      case "delete":
        return await this.#delete(op);
      case "txn":
        return { type: "txn", result: await this.run(op.txn) };
    }
  }

  /** Appends `row`, which follows `prev` (the key's latest row, null if it has none). */
  async #append(row: NewRow, prev: LogRow | null): Promise<number> {
    await this.pacer.pace();
    this.#latest.delete(row.name);
    const id = await this.tx.append(row);
    this.#last = id;
    this.appended.push({
      ...row,
      id,
      value: row.value ?? EMPTY,
      oldValue: prev?.value ?? EMPTY,
      prevCreateRevision: prev ? (prev.created ? prev.id : prev.createRevision) : 0,
      prevLease: prev?.lease ?? 0,
    });
    return id;
  }

  async #put(op: PutOp): Promise<OpResult> {
    const name = redirectKey(op.key);
    const prev = await this.#readLatest(name);
    const live: LogRow | null = prev && !prev.deleted ? prev : null;
    if (!live && (op.ignoreValue || op.ignoreLease)) {
      throw new BackendError("invalid", "etcdserver: key not found");
    }
    let value = op.ignoreValue ? live!.value : op.value;
    if (name === APISERVER_COMPACT_KEY) {
      const version = live ? decodeCompactValue(live.value).version : 0;
      value = encodeCompactValue(
        version + 1,
        op.ignoreValue ? decodeCompactValue(value).payload : value,
      );
    }
    await this.#append({
      name,
      created: !live,
      deleted: false,
      createRevision: live ? (live.created ? live.id : live.createRevision) : 0,
      prevRevision: prev ? prev.id : 0,
      lease: op.ignoreLease ? live!.lease : op.lease,
      value,
      version: live ? live.version + 1 : 1,
      oldValue: live ? live.value : null,
    }, prev);
    return { type: "put", prevKv: op.prevKv && live ? presentKv(rowToKv(live)) : undefined };
  }

  async #delete(op: DeleteOp): Promise<OpResult> {
    let rows: LogRow[];
    if (op.end === "") {
      const row = await this.#readLatest(redirectKey(op.key));
      rows = row && !row.deleted ? [row] : [];
    } else {
      const { current } = await this.tx.revisions();
      rows = await this.tx.list(op.key, op.end === FROM_KEY ? null : op.end, current, 0, false);
    }
    for (const row of rows) {
      await this.#append({
        name: row.name,
        created: false,
        deleted: true,
        createRevision: 0,
        prevRevision: row.id,
        lease: 0,
        value: null,
        version: row.version + 1,
        oldValue: row.value,
      }, row);
    }
    return {
      type: "delete",
      deleted: rows.length,
      prevKvs: op.prevKv ? rows.map((r) => presentKv(rowToKv(r))) : [],
    };
  }
}
