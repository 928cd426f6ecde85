/**
 * Bulk loads whose rows kine computed from its key index
 * (`logstructured/indexed_bulk.ts`) as one plain multi-row `INSERT … VALUES`
 * per commit, which reads nothing of `kine` (a previous value the writer does
 * not hold excepted, read by id), behind a guard that the log holds no row
 * above the index's position. PostgreSQL returns the ids; on MySQL a
 * multi-row insert of a known number of rows takes consecutive ids (InnoDB's
 * auto-increment lock modes 0–2 reserve a "simple insert"'s rows at once),
 * the first of which it reports.
 *
 * Why another server cannot slip a row in between: the guard fails the
 * transaction if any row above the position committed, so the store's rows
 * are those the index applied, and a key's newest row there is the index's
 * (a live row is never compacted; a key whose newest revision in the index is
 * a tombstone is not sent this way, since compaction may have removed it from
 * the store and not yet from the index; a key the index lacks has no row, for
 * the index drops a tombstone only after the compaction that removed it
 * committed). A write of another server still uncommitted read that same row
 * and took its slot: our row has the same `(name, prev_revision)` and the
 * unique index fails one of the two.
 *
 * @module
 */
import type { BulkKnown, BulkPrev, BulkPut } from "../logstructured/key_txn.ts";
import {
  bind,
  errorCode,
  renameTable,
  type SqlParam,
  type SqlResult,
  type SqlStatement,
  type Statements,
} from "./dialect.ts";

const COLUMNS = "name, created, deleted, create_revision, prev_revision, lease, value, " +
  "old_value, version";

/** Fails its transaction (a subquery of two rows as a value) if a row above `?` exists. */
const GUARD = "SELECT CASE WHEN COALESCE(MAX(id), 0) <= ? THEN 1 " +
  "ELSE (SELECT 1 UNION ALL SELECT 2) END FROM kine";

/** The engines' codes for the guard's failure (a scalar subquery of more than one row). */
const GUARD_FAILED = new Set(["21000", "ER_SUBQUERY_NO_1_ROW"]);

/** The row of a put after `prev`; its old value a parameter, or read by id where unknown. */
export function knownRow(put: BulkPut, prev: BulkPrev): { params: SqlParam[]; byId: boolean } {
  const live = prev.id !== 0;
  const byId = live && prev.value === undefined;
  return {
    params: [
      put.name,
      live ? 0 : 1,
      0,
      live ? prev.createRevision : 0,
      prev.id,
      put.lease,
      put.value,
      byId ? prev.id : (prev.value ?? null),
      live ? prev.version + 1 : 1,
    ],
    byId,
  };
}

/**
 * The insert's text for rows whose old value is read by id where `byId`;
 * PostgreSQL's `returning` the ids.
 */
export function knownInsertText(sql: Statements, byId: boolean[], returning = false): string {
  // MySQL reads the table it inserts into only through a derived table.
  const read = sql.dialect.name === "mysql"
    ? "(SELECT p.value FROM (SELECT value FROM kine WHERE id = ?) AS p)"
    : "(SELECT value FROM kine WHERE id = ?)";
  const build = () =>
    `INSERT INTO kine(${COLUMNS}) VALUES ` +
    byId.map((r) => `(?, ?, ?, ?, ?, ?, ?, ${r ? read : "?"}, ?)`).join(", ") +
    (returning ? " RETURNING id" : "");
  if (!byId.includes(true)) return sql.cached(`bulk-known:${byId.length}:${returning}`, build);
  return renameTable(bind(sql.dialect, build()), sql.table);
}

/**
 * The statements of bulk loads whose rows are `known`: the guard, then every
 * load's rows as one insert (PostgreSQL `returning` their ids).
 */
export function knownBulkStatements(
  sql: Statements,
  loads: BulkPut[][],
  known: BulkKnown,
  returning: boolean,
): SqlStatement[] {
  const params: SqlParam[] = [];
  const byId: boolean[] = [];
  loads.forEach((puts, l) =>
    puts.forEach((put, i) => {
      const r = knownRow(put, known.prev[l][i]);
      for (const p of r.params) params.push(p);
      byId.push(r.byId);
    })
  );
  return [
    { sql: sql.cached("bulk-known-guard", () => GUARD), params: [known.position] },
    { sql: knownInsertText(sql, byId, returning), params },
  ];
}

/**
 * Each load's row ids from what {@link knownBulkStatements} returned (the
 * insert is the last result): PostgreSQL's returned ids, MySQL's first id
 * and row count.
 */
export function knownBulkIds(loads: BulkPut[][], results: SqlResult[]): number[][] {
  const insert = results[results.length - 1];
  const n = loads.reduce((s, p) => s + p.length, 0);
  const ids = insert.rows.length > 0
    ? insert.rows.map((r) => Number(r[0])).sort((a, b) => a - b)
    : Array.from({ length: insert.changes }, (_, i) => insert.lastId + i);
  if (ids.length !== n) throw new Error(`bulk insert wrote ${ids.length} rows of ${n}`);
  let at = 0;
  return loads.map((puts) => ids.slice(at, at += puts.length));
}

/** True for the guard's failure: the log holds a row above the position. */
export function guardFailed(err: unknown): boolean {
  return GUARD_FAILED.has(errorCode(err));
}
