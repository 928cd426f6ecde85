import type {
  EventRow,
  IndexReader,
  LogRow,
  LogWriteTx,
  NewRow,
  PollReader,
  Revisions,
} from "../logstructured/log.ts";
import { GapHeld } from "../logstructured/log.ts";
import type { LeaseRecord } from "../types.ts";
import { BackendError } from "../errors.ts";
import {
  type Bounds,
  errorCode,
  type EventRange,
  type SqlConn,
  type SqlParam,
  type SqlRow,
  type Statements,
} from "./dialect.ts";
import { keyOfStored, nameToWrite, rangeParts, storedKey, type StoredRange } from "./keys.ts";

const EMPTY = new Uint8Array(0);
/** kine's bookkeeping row, never a key a client sees. */
const COMPACT_ROW = "compact_rev_key";
/** Gap tombstones per fill statement: few distinct statement texts, short statements. */
const FILL_CHUNK = 32;
/** Values read per statement by id (a power of two). */
const MAX_VALUES = 512;

/** A `kine_lease` row: `id, ttl, expires_at`. */
export function toLease(r: SqlRow): LeaseRecord {
  return { id: Number(r[0]), ttl: Number(r[1]), expiresAt: Number(r[2]) };
}

/**
 * A row of `id, name, created, deleted, create_revision, prev_revision,
 * lease[, value], version` (the Statements' column order).
 */
export function toRow(r: SqlRow, keysOnly = false): LogRow {
  return {
    id: Number(r[0]),
    name: keyOfStored(r[1]),
    created: Number(r[2]) === 1,
    deleted: Number(r[3]) !== 0,
    createRevision: Number(r[4]),
    prevRevision: Number(r[5]),
    lease: Number(r[6]),
    value: keysOnly ? EMPTY : (r[7] as Uint8Array | null) ?? EMPTY,
    version: Number(r[keysOnly ? 7 : 8]),
  };
}

/**
 * The values of one joined read (`Dialect.joinedValues`: ids, lengths, the
 * values end to end) into `out`, each a view of the
 * one buffer: no row and no buffer per value. No row matched: every
 * aggregate is NULL.
 */
function splitJoined(r: SqlRow | undefined, out: Map<number, Uint8Array>): void {
  if (!r || r[0] === null || r[0] === undefined) return;
  const ids = String(r[0]);
  const lengths = String(r[1]);
  const bytes = r[2] as Uint8Array;
  // Both lists are read in place: a string per number was a tenth of the read's CPU.
  const idList = new NumberList(ids);
  const lengthList = new NumberList(lengths);
  let at = 0;
  while (!idList.done) {
    if (lengthList.done) throw new Error("joined values: fewer lengths than ids");
    const id = idList.next();
    const end = at + lengthList.next();
    out.set(id, bytes.subarray(at, end));
    at = end;
  }
  if (!lengthList.done || at !== bytes.length) {
    throw new Error("joined values: ids, lengths and bytes differ");
  }
}

/** Comma-separated non-negative integers read one at a time. */
class NumberList {
  #at = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.#at >= this.text.length;
  }

  next(): number {
    const t = this.text;
    let n = 0;
    while (this.#at < t.length) {
      const c = t.charCodeAt(this.#at++);
      if (c === 44) break;
      n = n * 10 + c - 48;
    }
    return n;
  }
}

/** A row as {@link toRow} reads it, then `old_value, p_created, p_create_revision, p_lease`. */
function toEventRow(r: SqlRow): EventRow {
  const row = toRow(r);
  const pCreated = r[10];
  return {
    ...row,
    oldValue: (r[9] as Uint8Array | null) ?? EMPTY,
    prevCreateRevision: pCreated == null
      ? 0
      : Number(pCreated) === 1
      ? row.prevRevision
      : Number(r[11]),
    prevLease: Number(r[12] ?? 0),
  };
}

/**
 * A text range's bounds as the engine can compare them: cut at a NUL, and,
 * where the key column holds only characters up to `maxChar` (MySQL's
 * ascii), cut before the first character above it and rounded up to the
 * next storable prefix. `end` null = no upper bound. Returns null for a
 * range no storable key can be in.
 */
function textBounds(start: string, end: string | null, maxChar: number): StoredRange | null {
  const lo = cut(start, maxChar);
  let r: StoredRange;
  if (lo.at === "wide") {
    const next = successor(lo.key, maxChar);
    if (next === null) return null;
    r = { lo: next, loOp: ">=" };
  } else r = { lo: lo.key, loOp: lo.at === "nul" ? ">" : ">=" };
  if (end !== null) {
    const hi = cut(end, maxChar);
    if (hi.at === "wide") {
      const next = successor(hi.key, maxChar);
      if (next !== null) Object.assign(r, { hi: next, hiOp: "<" });
    } else Object.assign(r, { hi: hi.key, hiOp: hi.at === "nul" ? "<=" : "<" });
  }
  return r;
}

/** A stored range as statement bounds and their params. */
function toBounds(r: StoredRange): { b: Bounds; params: SqlParam[] } {
  const b: Bounds = { lo: r.loOp, hi: r.hi === undefined ? "" : r.hiOp! };
  return { b, params: r.hi === undefined ? [r.lo] : [r.lo, r.hi] };
}

/** `key` up to its first NUL or character above `maxChar`, and which one stopped it. */
function cut(key: string, maxChar: number): { key: string; at: "nul" | "wide" | "" } {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 0) return { key: key.slice(0, i), at: "nul" };
    if (c > maxChar) return { key: key.slice(0, i), at: "wide" };
  }
  return { key, at: "" };
}

/** The smallest storable key above every key starting with `prefix`, or null if none. */
function successor(prefix: string, maxChar: number): string | null {
  let p = prefix;
  while (p.length > 0 && p.charCodeAt(p.length - 1) >= maxChar) p = p.slice(0, -1);
  if (p === "") return null;
  return p.slice(0, -1) + String.fromCharCode(p.charCodeAt(p.length - 1) + 1);
}

/**
 * The log over one SQL connection: autocommit reads, or (for the write
 * methods) an open write transaction.
 */
export class SqlLogTx implements LogWriteTx, PollReader, IndexReader {
  constructor(
    private readonly conn: SqlConn,
    private readonly sql: Statements,
  ) {
    this.#maxChar = sql.dialect.maxKeyChar;
    this.#binary = sql.dialect.binaryKeys === true;
    this.waits = sql.dialect.waitingRead !== undefined;
  }

  readonly waits: boolean;

  readonly #maxChar: number;
  readonly #binary: boolean;

  /** `key` as the column holds it; undefined if no row can carry it. */
  #stored(key: string): string | Uint8Array | undefined {
    const name = storedKey(key, this.#binary);
    if (typeof name === "string" && cut(name, this.#maxChar).at !== "") return undefined;
    return name;
  }

  /** The statement bounds of each stored part of `[start, end)` (see `keys.ts`). */
  #parts(start: string, end: string | null): { b: Bounds; params: SqlParam[] }[] {
    const text = (lo: string, hi: string | null) => textBounds(lo, hi, this.#maxChar);
    return rangeParts(start, end, this.#binary, text).map(toBounds);
  }

  async revisions(): Promise<Revisions> {
    const [r] = await this.conn.all("revisions", this.sql.revisions(), []);
    const compact = Number(r?.[1] ?? 0);
    // Compaction may delete the newest row (a tombstone); the revision never goes back.
    return { current: Math.max(Number(r?.[0] ?? 0), compact), compact };
  }

  async list(
    start: string,
    end: string | null,
    revision: number,
    limit: number,
    keysOnly: boolean,
  ): Promise<LogRow[]> {
    if (end === "") {
      const name = this.#stored(start);
      if (name === undefined) return [];
      const rows = await this.conn.all("get", this.sql.getAt(keysOnly), [name, revision]);
      return rows.map((r) => toRow(r, keysOnly));
    }
    const parts = this.#parts(start, end);
    const out: LogRow[] = [];
    for (const { b, params } of parts) {
      let rows: SqlRow[];
      if (limit > 0 && !this.sql.dialect.orderedListJoin) {
        rows = await this.#pages(b, params, revision, limit, keysOnly);
      } else {
        const all: SqlParam[] = [...params, revision];
        if (limit > 0) all.push(limit);
        rows = await this.conn.all("list", this.sql.list(b, keysOnly, limit > 0), all);
      }
      for (const r of rows) out.push(toRow(r, keysOnly));
    }
    // Parts interleave in key order (SQLite's text and BLOB keys): merged here.
    if (parts.length > 1) out.sort((x, y) => x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
    return limit > 0 ? out.slice(0, limit) : out;
  }

  /**
   * A limited list read a page of names at a time (see `Statements.listPage`)
   * until `limit` live keys are found or the range ends.
   */
  async #pages(
    b: Bounds,
    params: SqlParam[],
    revision: number,
    limit: number,
    keysOnly: boolean,
  ): Promise<SqlRow[]> {
    const out: SqlRow[] = [];
    const upper = params.slice(1);
    let from = params[0];
    let lo = b.lo;
    for (;;) {
      // A few names more than needed: the latest row of some may be a tombstone.
      const fetch = limit - out.length + 8;
      const page = await this.conn.all(
        "list",
        this.sql.listPage({ lo, hi: b.hi }, keysOnly),
        [from, ...upper, revision, fetch],
      );
      for (const r of page) {
        if (Number(r[3]) === 0 && r[1] !== COMPACT_ROW) out.push(r);
        if (out.length === limit) return out;
      }
      if (page.length < fetch) return out;
      from = page[page.length - 1][1] as SqlParam;
      lo = ">";
    }
  }

  async count(start: string, end: string | null, revision: number): Promise<number> {
    if (end === "") {
      const name = this.#stored(start);
      if (name === undefined) return 0;
      const rows = await this.conn.all("count", this.sql.countOne(), [name, revision]);
      return Number(rows[0]?.[0] ?? 0);
    }
    let n = 0;
    for (const { b, params } of this.#parts(start, end)) {
      const rows = await this.conn.all("count", this.sql.count(b), [...params, revision]);
      n += Number(rows[0]?.[0] ?? 0);
    }
    return n;
  }

  async leased(revision: number): Promise<LogRow[]> {
    const rows = await this.conn.all("leased", this.sql.leased(), [revision]);
    return rows.map((r) => toRow(r, true));
  }

  async rows(after: number, upTo: number, limit: number): Promise<LogRow[]> {
    const rows = await this.conn.all("index_rows", this.sql.indexRows(), [after, upTo, limit]);
    return rows.map((r) => toRow(r, true));
  }

  async values(ids: number[]): Promise<Map<number, Uint8Array>> {
    const out = new Map<number, Uint8Array>();
    const reads: (SqlRow[] | Promise<SqlRow[]>)[] = [];
    const array = this.sql.dialect.anyId !== undefined;
    for (let i = 0; i < ids.length; i += MAX_VALUES) {
      const chunk = ids.slice(i, i + MAX_VALUES);
      if (array) {
        reads.push(this.conn.all("values", this.sql.values(0), [`{${chunk.join(",")}}`]));
        continue;
      }
      // Few statement texts: the chunk is padded to a power of two with its last id.
      let n = 1;
      while (n < chunk.length) n *= 2;
      while (chunk.length < n) chunk.push(chunk[chunk.length - 1]);
      reads.push(this.conn.all("values", this.sql.values(n), chunk));
    }
    const joined = this.sql.dialect.joinedValues !== undefined;
    for (const rows of await Promise.all(reads)) {
      if (joined) splitJoined(rows[0], out);
      else for (const r of rows) out.set(Number(r[0]), (r[1] as Uint8Array | null) ?? EMPTY);
    }
    return out;
  }

  async latest(key: string): Promise<LogRow | null> {
    const name = this.#stored(key);
    if (name === undefined) return null;
    const [r] = await this.conn.all("latest", this.sql.latest(), [name]);
    return r ? toRow(r) : null;
  }

  async append(row: NewRow): Promise<number> {
    const name = nameToWrite(row.name, this.sql.dialect);
    if (name instanceof BackendError) throw name;
    const params: SqlParam[] = [
      name,
      row.created ? 1 : 0,
      row.deleted ? 1 : 0,
      row.createRevision,
      row.prevRevision,
      row.lease,
      row.value,
      row.prevRevision,
      row.version,
    ];
    const known = row.oldValue !== undefined && this.sql.dialect.oldValueParam === true;
    if (known) params[7] = row.oldValue!;
    const insert = known ? this.sql.insertKnown() : this.sql.insert();
    if (this.sql.dialect.insertSuffix) {
      const [r] = await this.conn.all("insert", insert, params);
      return Number(r[0]);
    }
    return (await this.conn.run("insert", insert, params)).lastId;
  }

  /**
   * Rows with `after < id <= upTo` (no upper bound when `upTo` is 0) in id
   * order, optionally only those of `[key, end)` ("" = the key, null = open-ended).
   */
  async events(
    after: number,
    upTo: number,
    limit: number,
    key?: string,
    end?: string | null,
  ): Promise<EventRow[]> {
    const head: SqlParam[] = upTo > 0 ? [after, upTo] : [after];
    const read = async (range: EventRange, b: Bounds, params: SqlParam[]) =>
      (await this.conn.all(
        "events",
        this.sql.events(range, upTo > 0, b),
        [...head, ...params, limit],
      )).map(toEventRow);
    if (key === undefined) return read("all", { lo: ">=", hi: "" }, []);
    if (end === "") {
      const name = this.#stored(key);
      return name === undefined ? [] : read("exact", { lo: ">=", hi: "" }, [name]);
    }
    const parts = this.#parts(key, end ?? null);
    const out: EventRow[] = [];
    for (const { b, params } of parts) out.push(...await read(b.hi ? "range" : "from", b, params));
    // Each part is in id order and at most `limit` long: the first `limit` of their union.
    if (parts.length > 1) out.sort((x, y) => x.id - y.id);
    return out.slice(0, limit);
  }

  async eventsOf(ids: number[], waiting: boolean): Promise<EventRow[]> {
    // Padded to a power of two with the last id again: few statement texts.
    const n = 2 ** Math.ceil(Math.log2(ids.length));
    const params = [...ids, ...Array(n - ids.length).fill(ids[ids.length - 1])];
    const wait = waiting && this.waits;
    return (await this.conn.all(
      wait ? "events_wait" : "events_of",
      this.sql.eventsOf(n, wait),
      params,
    )).map(toEventRow);
  }

  async eventsOfAndAfter(ids: number[], after: number, limit: number): Promise<EventRow[]> {
    const n = 2 ** Math.ceil(Math.log2(ids.length));
    const params = [...ids, ...Array(n - ids.length).fill(ids[ids.length - 1])];
    return (await this.conn.all(
      "events_of_after",
      this.sql.eventsOfAndAfter(n),
      [ids[0], ...params, after, ids.length + limit],
    )).map(toEventRow);
  }

  async savepoint(): Promise<void> {
    await this.#pipelined("savepoint", "SAVEPOINT kine_txn");
  }

  async releaseSavepoint(): Promise<void> {
    await this.#pipelined("release", "RELEASE SAVEPOINT kine_txn");
  }

  /** Bookkeeping whose answer nothing waits for: sent ahead of the next statement where possible. */
  async #pipelined(name: string, sql: string): Promise<void> {
    if (this.conn.send) this.conn.send(name, sql);
    else await this.conn.run(name, sql, []);
  }

  async rollbackToSavepoint(): Promise<void> {
    await this.conn.run("rollback", "ROLLBACK TO SAVEPOINT kine_txn", []);
    await this.releaseSavepoint();
  }

  async rowsNamed(key: string): Promise<{ id: number; prevRevision: number }[]> {
    const rows = await this.conn.all("rows_named", this.sql.rowsNamed(), [key]);
    return rows.map((r) => ({ id: Number(r[0]), prevRevision: Number(r[2]) }));
  }

  async deleteRow(id: number): Promise<void> {
    await this.conn.run("delete", this.sql.deleteRow(), [id]);
  }

  async compactTo(from: number, target: number): Promise<boolean> {
    // The conditional move first: it locks the bookkeeping row, so a second compactor waits here.
    const moved = await this.conn.run("update_compact", this.sql.updateCompact(), [target, from]);
    if (moved.changes === 0) return false;
    // Rows at or below `from` were handled by the batches that reached it: only this span is read.
    await this.conn.run("compact", this.sql.compact(), [from, target, from, target]);
    return true;
  }

  async compactBound(
    from: number,
    target: number,
    rows: number,
  ): Promise<{ target: number; cut: boolean }> {
    const [r] = await this.conn.all("compact_bound", this.sql.compactBound(), [from, target, rows]);
    return r ? { target: Number(r[0]) - 1, cut: true } : { target, cut: false };
  }

  async fill(ids: number[]): Promise<number> {
    const guard = this.sql.dialect.fillGuard;
    let filled = 0;
    try {
      for (let i = 0; i < ids.length; i += FILL_CHUNK) {
        const chunk = ids.slice(i, i + FILL_CHUNK);
        const first = this.sql.fillGuard(chunk.length);
        if (first && (i === 0 || guard!.perId)) {
          await this.conn.run("fill_guard", first, guard!.perId ? chunk : []);
        }
        const params = chunk.flatMap((id) => [id, `gap-${id}`]);
        filled += (await this.conn.run("fill", this.sql.fill(chunk.length), params)).changes;
      }
    } catch (err) {
      if (guard?.held.includes(errorCode(err))) throw new GapHeld();
      throw err;
    }
    return filled;
  }

  async lease(id: number): Promise<LeaseRecord | null> {
    const [r] = await this.conn.all("lease", this.sql.leases(true), [id]);
    return r ? toLease(r) : null;
  }

  async claimRole(role: string, holder: string, now: number, until: number): Promise<boolean> {
    const params = [holder, until, role, holder, now];
    if ((await this.conn.run("role_renew", this.sql.renewRole(), params)).changes > 0) return true;
    const inserted = await this.conn.run("role_insert", this.sql.insertRole(), [
      role,
      holder,
      until,
    ]);
    return inserted.changes > 0;
  }

  async saveLease(lease: LeaseRecord): Promise<void> {
    const params = [lease.id, lease.ttl, lease.expiresAt];
    await this.conn.run("lease_upsert", this.sql.leaseUpsert(), params);
  }

  async deleteLease(id: number): Promise<void> {
    await this.conn.run("lease_delete", this.sql.leaseDelete(), [id]);
  }
}
