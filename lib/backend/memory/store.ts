/**
 * `memory://`: the revision log in process memory, nothing persisted. It is
 * the shared log logic with no database under it — the reference for the
 * front end's own limit in the benchmark, and a store for tests.
 */
import { compareKeys, keyInRange } from "../keys.ts";
import { COMPACT_KEY } from "../logstructured/compact_key.ts";
import { gapRecord } from "../logstructured/events.ts";
import type {
  EventRow,
  IndexReader,
  LogRow,
  LogStore,
  LogWriteTx,
  NewRow,
  PollReader,
  Revisions,
  StoreFailure,
} from "../logstructured/log.ts";
import type { LeaseRecord } from "../types.ts";

interface Row extends NewRow {
  id: number;
  oldValue: Uint8Array | null;
}

const EMPTY = new Uint8Array(0);

const byNumber = (a: number, b: number) => a - b;

/** First index in `a` (sorted by `cmp`) whose value is ≥ `x` (or > `x` when `after`). */
function bisect<T>(a: T[], x: T, cmp: (a: T, b: T) => number, after = false): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = cmp(a[mid], x);
    if (c < 0 || (after && c === 0)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The tables: rows by id (in id order), ids per key, keys in byte order. */
class Tables {
  readonly rows = new Map<number, Row>();
  readonly ids = new Map<string, number[]>();
  readonly names: string[] = [];
  readonly leases = new Map<number, LeaseRecord>();
  readonly roles = new Map<string, { holder: string; until: number }>();
  lastId = 0;
  /** Highest id of a committed transaction; readers see nothing above it. */
  committed = 0;

  insert(row: Row): void {
    this.rows.set(row.id, row);
    let ids = this.ids.get(row.name);
    if (!ids) {
      this.ids.set(row.name, ids = []);
      this.names.splice(bisect(this.names, row.name, compareKeys), 0, row.name);
    }
    ids.splice(bisect(ids, row.id, byNumber), 0, row.id);
  }

  /** Inserts a new row under `id`; its old value is the value of the row it follows. */
  add(id: number, r: NewRow): void {
    const prev = r.prevRevision ? this.rows.get(r.prevRevision) : undefined;
    this.insert({ id, ...r, oldValue: prev?.value ?? null });
  }

  remove(id: number): Row | undefined {
    const row = this.rows.get(id);
    if (!row) return undefined;
    this.rows.delete(id);
    const ids = this.ids.get(row.name)!;
    ids.splice(bisect(ids, id, byNumber), 1);
    if (ids.length === 0) {
      this.ids.delete(row.name);
      this.names.splice(bisect(this.names, row.name, compareKeys), 1);
    }
    return row;
  }
}

/** A view of the tables: readers are capped at the committed id, writers are not. */
class MemoryTx implements LogWriteTx, PollReader, IndexReader {
  /** Undo steps of the open transaction; `#mark` is where the savepoint started. */
  readonly #undo: (() => void)[] = [];
  #mark = 0;

  constructor(private readonly t: Tables, private readonly reader: boolean) {}

  #top(): number {
    return this.reader ? this.t.committed : this.t.lastId;
  }

  #latestId(name: string, revision: number): number | undefined {
    const ids = this.t.ids.get(name);
    if (!ids) return undefined;
    const i = bisect(ids, revision, byNumber, true) - 1;
    return i >= 0 ? ids[i] : undefined;
  }

  /** A row with what its event needs of the previous row. */
  #eventRow(row: Row): EventRow {
    const prev = row.created ? undefined : this.t.rows.get(row.prevRevision);
    return {
      ...this.#logRow(row),
      oldValue: row.oldValue ?? EMPTY,
      prevCreateRevision: prev ? (prev.created ? prev.id : prev.createRevision) : 0,
      prevLease: prev?.lease ?? 0,
    };
  }

  #logRow(row: Row, keysOnly = false): LogRow {
    return {
      id: row.id,
      name: row.name,
      created: row.created,
      deleted: row.deleted,
      createRevision: row.createRevision,
      prevRevision: row.prevRevision,
      lease: row.lease,
      value: keysOnly ? EMPTY : row.value ?? EMPTY,
      version: row.version,
    };
  }

  revisions(): Revisions {
    const bookkeeping = this.t.ids.get(COMPACT_KEY);
    const compact = bookkeeping ? this.t.rows.get(bookkeeping[0])!.prevRevision : 0;
    return { current: this.#top(), compact };
  }

  /** Live rows of `[start, end)` at `revision`, in key order. */
  *#live(start: string, end: string | null, revision: number): Generator<Row> {
    const rev = Math.min(revision, this.#top());
    if (end === "") {
      const id = this.#latestId(start, rev);
      const row = id === undefined ? undefined : this.t.rows.get(id)!;
      if (row && !row.deleted && row.name !== COMPACT_KEY) yield row;
      return;
    }
    const names = this.t.names;
    for (let i = bisect(names, start, compareKeys); i < names.length; i++) {
      const name = names[i];
      if (end !== null && compareKeys(name, end) >= 0) return;
      const id = this.#latestId(name, rev);
      if (id === undefined || name === COMPACT_KEY) continue;
      const row = this.t.rows.get(id)!;
      if (!row.deleted) yield row;
    }
  }

  list(
    start: string,
    end: string | null,
    revision: number,
    limit: number,
    keysOnly: boolean,
  ): LogRow[] {
    const out: LogRow[] = [];
    for (const row of this.#live(start, end, revision)) {
      out.push(this.#logRow(row, keysOnly));
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }

  leased(revision: number): LogRow[] {
    const out: LogRow[] = [];
    for (const row of this.#live("", null, revision)) {
      if (row.lease !== 0) out.push(this.#logRow(row, true));
    }
    return out;
  }

  count(start: string, end: string | null, revision: number): number {
    let n = 0;
    for (const _ of this.#live(start, end, revision)) n++;
    return n;
  }

  latest(key: string): LogRow | null {
    const id = this.#latestId(key, this.#top());
    return id === undefined ? null : this.#logRow(this.t.rows.get(id)!);
  }

  append(r: NewRow): number {
    const id = ++this.t.lastId;
    this.t.add(id, r);
    this.#undo.push(() => {
      this.t.remove(id);
      this.t.lastId = id - 1;
    });
    return id;
  }

  events(
    after: number,
    upTo: number,
    limit: number,
    key?: string,
    end?: string | null,
  ): EventRow[] {
    const top = upTo > 0 ? Math.min(upTo, this.#top()) : this.#top();
    const out: EventRow[] = [];
    for (let id = after + 1; id <= top && out.length < limit; id++) {
      const row = this.t.rows.get(id);
      if (!row) continue;
      if (key !== undefined && !keyInRange(row.name, key, end ?? "\0")) continue;
      out.push(this.#eventRow(row));
    }
    return out;
  }

  eventsOf(ids: number[]): EventRow[] {
    return ids.flatMap((id) => {
      const row = this.t.rows.get(id);
      return row ? [this.#eventRow(row)] : [];
    });
  }

  rows(after: number, upTo: number, limit: number): LogRow[] {
    const top = Math.min(upTo, this.#top());
    const out: LogRow[] = [];
    for (let id = after + 1; id <= top && out.length < limit; id++) {
      const row = this.t.rows.get(id);
      if (row) out.push(this.#logRow(row, true));
    }
    return out;
  }

  values(ids: number[]): Map<number, Uint8Array> {
    const out = new Map<number, Uint8Array>();
    for (const id of ids) {
      const row = id <= this.#top() ? this.t.rows.get(id) : undefined;
      if (row) out.set(id, row.value ?? EMPTY);
    }
    return out;
  }

  savepoint(): void {
    this.#mark = this.#undo.length;
  }

  releaseSavepoint(): void {
    this.#mark = 0;
  }

  rollbackToSavepoint(): void {
    this.rollback(this.#mark);
  }

  /** Undoes every step after `mark` (0 = the whole transaction). */
  rollback(mark = 0): void {
    while (this.#undo.length > mark) this.#undo.pop()!();
  }

  rowsNamed(key: string): { id: number; prevRevision: number }[] {
    return (this.t.ids.get(key) ?? []).map((id) => ({
      id,
      prevRevision: this.t.rows.get(id)!.prevRevision,
    }));
  }

  deleteRow(id: number): void {
    const row = this.t.remove(id);
    if (row) this.#undo.push(() => this.t.insert(row));
  }

  compactTo(from: number, target: number): boolean {
    const book = this.t.rows.get(this.t.ids.get(COMPACT_KEY)?.[0] ?? -1);
    if (book && book.prevRevision !== from) return false;
    const doomed = new Set<number>();
    for (const row of this.t.rows.values()) {
      if (row.id > target) break;
      if (row.name !== COMPACT_KEY && row.prevRevision !== 0) doomed.add(row.prevRevision);
      if (row.deleted) doomed.add(row.id);
    }
    for (const id of doomed) this.deleteRow(id);
    if (book) {
      book.prevRevision = target;
      this.#undo.push(() => book.prevRevision = from);
    }
    return true;
  }

  fill(ids: number[]): number {
    let filled = 0;
    for (const id of ids) {
      if (this.t.rows.has(id)) continue;
      this.t.insert(gapRecord(id));
      this.#undo.push(() => this.t.remove(id));
      filled++;
    }
    return filled;
  }

  lease(id: number): LeaseRecord | null {
    return this.t.leases.get(id) ?? null;
  }

  claimRole(role: string, holder: string, now: number, until: number): boolean {
    const was = this.t.roles.get(role);
    if (was && was.holder !== holder && was.until >= now) return false;
    this.t.roles.set(role, { holder, until });
    this.#undo.push(() => was ? this.t.roles.set(role, was) : this.t.roles.delete(role));
    return true;
  }

  saveLease(lease: LeaseRecord): void {
    const was = this.t.leases.get(lease.id);
    this.t.leases.set(lease.id, lease);
    this.#undo.push(() => was ? this.t.leases.set(lease.id, was) : this.t.leases.delete(lease.id));
  }

  deleteLease(id: number): void {
    const was = this.t.leases.get(id);
    this.t.leases.delete(id);
    if (was) this.#undo.push(() => this.t.leases.set(id, was));
  }
}

/** The memory store. Writes are serialised by the log backend above it. */
export class MemoryStore implements LogStore {
  readonly #t = new Tables();
  readonly reader = new MemoryTx(this.#t, true);
  readonly fillRetryDelayMs = 0;
  /** One process: every write wakes the loop itself; the timer is only a safety net. */
  readonly pollIntervalMs = 1000;
  readonly parallelWrites = false;
  readonly valuesInMemory = true;

  async write<T>(fn: (tx: LogWriteTx) => Promise<T>): Promise<T> {
    const tx = new MemoryTx(this.#t, false);
    try {
      const result = await fn(tx);
      this.#t.committed = this.#t.lastId;
      return result;
    } catch (err) {
      tx.rollback();
      throw err;
    }
  }

  /**
   * For a copy of a log kept elsewhere (the NATS backend's index): inserts a
   * row under the id its source gave it. Ids must grow; the row is visible at once.
   */
  insertAt(id: number, row: NewRow): void {
    this.#t.add(id, row);
    this.#t.lastId = this.#t.committed = id;
  }

  /** For a copy: drops a row its source no longer holds. */
  removeRow(id: number): void {
    this.#t.remove(id);
  }

  /** For a copy: {@link LogWriteTx.compactTo} outside a transaction. */
  compactTo(target: number): void {
    const tx = new MemoryTx(this.#t, false);
    tx.compactTo(tx.revisions().compact, target);
  }

  classify(): StoreFailure {
    return { kind: "other", code: "" };
  }

  size(): Promise<number> {
    let bytes = 0;
    for (const row of this.#t.rows.values()) {
      bytes += row.name.length + (row.value?.length ?? 0) + 64;
    }
    return Promise.resolve(bytes);
  }

  afterCompact(): Promise<void> {
    return Promise.resolve();
  }

  leaseRecords(id?: number): Promise<LeaseRecord[]> {
    const all = [...this.#t.leases.values()];
    return Promise.resolve(id === undefined ? all : all.filter((l) => l.id === id));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
