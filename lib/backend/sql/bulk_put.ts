/**
 * A bulk load (a txn of plain puts, `logstructured/key_txn.ts`) on an engine
 * without a pipelined driver (SQLite), inside a write transaction already
 * open: set-based instead of a statement and an await per put. The keys'
 * latest rows come in one statement per {@link ROWS} keys, each new row is
 * computed here as `TxnRunner`'s put computes it, and the rows go in as
 * multi-row `INSERT … VALUES`. A row per statement of the single-put path
 * costs SQLite twice as much (its `INSERT … SELECT` reads `kine` for the old
 * value, so SQLite stages each row in a temporary table first).
 *
 * @module
 */
import type { BulkKnown, BulkPut } from "../logstructured/key_txn.ts";
import { knownInsertText, knownRow } from "./bulk_known.ts";
import { BackendError } from "../errors.ts";
import { cols, type SqlConn, type SqlParam, type Statements } from "./dialect.ts";
import { nameToWrite } from "./keys.ts";
import { toRow } from "./tx.ts";
import type { LogRow } from "../logstructured/log.ts";

/** Keys per latest-row lookup and rows per insert (9 parameters each). */
const ROWS = 128;

const COLUMNS = "name, created, deleted, create_revision, prev_revision, lease, value, " +
  "old_value, version";

/** The latest row of each of `n` names (tombstones included; names without rows left out). */
function latestOf(sql: Statements, n: number): string {
  return sql.cached(
    `bulk-latest:${n}`,
    () =>
      `SELECT ${cols(false)} FROM kine WHERE kine.id IN (SELECT MAX(id) FROM kine ` +
      `WHERE name IN (${Array(n).fill("?").join(", ")}) GROUP BY name)`,
  );
}

/** An insert of `n` rows of {@link COLUMNS}. */
function insertOf(sql: Statements, n: number): string {
  return sql.cached(
    `bulk-insert:${n}`,
    () =>
      `INSERT INTO kine(${COLUMNS}) VALUES ` +
      Array(n).fill("(?, ?, ?, ?, ?, ?, ?, ?, ?)").join(", "),
  );
}

/** The columns of `put`'s row after `prev`, the key's latest row (as `TxnRunner`'s put). */
function rowParams(name: SqlParam, put: BulkPut, prev: LogRow | undefined): SqlParam[] {
  const live = prev && !prev.deleted ? prev : undefined;
  return [
    name,
    live ? 0 : 1,
    0,
    live ? (live.created ? live.id : live.createRevision) : 0,
    prev ? prev.id : 0,
    put.lease,
    put.value,
    live ? live.value : null,
    live ? live.version + 1 : 1,
  ];
}

/**
 * Appends a bulk load's rows (its keys distinct) in the open transaction on
 * `conn`; returns the highest id, the txn's revision. `pace` runs before
 * each statement after the first, so a long load lets other requests in.
 */
export async function appendPuts(
  conn: SqlConn,
  sql: Statements,
  puts: BulkPut[],
  pace: () => Promise<void>,
): Promise<number> {
  const names = puts.map((p) => {
    const name = nameToWrite(p.name, sql.dialect);
    if (name instanceof BackendError) throw name;
    return name;
  });
  let last = 0;
  for (let at = 0; at < puts.length; at += ROWS) {
    if (at > 0) await pace();
    const part = names.slice(at, at + ROWS);
    const latest = new Map<string, LogRow>();
    for (const r of await conn.all("bulk_latest", latestOf(sql, part.length), part)) {
      const row = toRow(r);
      latest.set(row.name, row);
    }
    const params: SqlParam[] = [];
    part.forEach((name, i) => {
      const put = puts[at + i];
      params.push(...rowParams(name, put, latest.get(put.name)));
    });
    last = (await conn.run("bulk_insert", insertOf(sql, part.length), params)).lastId;
  }
  return last;
}

/**
 * Bulk loads whose rows kine computed from its key index (`bulk_known.ts`),
 * their names as the engine stores them, in the open transaction on `conn`: no read of the keys' rows, only of the
 * log's highest id, which must not be above `known.position` (another
 * process wrote the file meanwhile: null, nothing written). Returns each
 * load's row ids; a multi-row insert under the file's write lock takes
 * consecutive ids.
 */
export async function appendKnownPuts(
  conn: SqlConn,
  sql: Statements,
  loads: BulkPut[][],
  known: BulkKnown,
  pace: () => Promise<void>,
): Promise<number[][] | null> {
  const [top] = await conn.all(
    "bulk_guard",
    sql.cached("bulk-known-top", () => "SELECT MAX(id) FROM kine"),
    [],
  );
  if (Number(top?.[0] ?? 0) > known.position) return null;
  const ids: number[][] = [];
  for (const [l, puts] of loads.entries()) {
    const out: number[] = [];
    for (let at = 0; at < puts.length; at += ROWS) {
      if (at > 0 || l > 0) await pace();
      const params: SqlParam[] = [];
      const byId: boolean[] = [];
      for (let i = at; i < Math.min(at + ROWS, puts.length); i++) {
        const r = knownRow(puts[i], known.prev[l][i]);
        for (const p of r.params) params.push(p);
        byId.push(r.byId);
      }
      const { lastId } = await conn.run("bulk_insert", knownInsertText(sql, byId), params);
      for (let id = lastId - byId.length + 1; id <= lastId; id++) out.push(id);
    }
    ids.push(out);
  }
  return ids;
}
