/**
 * A single-key txn (`logstructured/key_txn.ts`) as SQL that needs no answer
 * before the next one is sent: the key's latest row is read, the compares
 * are evaluated and the row is inserted only if they hold, all server-side.
 * So a batch of them, with BEGIN and COMMIT, is one round trip.
 *
 * The unique `(name, prev_revision)` index still decides between writers:
 * the insert skips a row another transaction took (`ON CONFLICT DO NOTHING`,
 * `INSERT IGNORE`) instead of failing the transaction, and the caller sees
 * "compares held, nothing written" and runs that txn again.
 */
import type { BulkPut, KeyTxn, KeyTxnRow } from "../logstructured/key_txn.ts";
import type { Compare } from "../types.ts";
import {
  cols,
  type KeyTxnDialect,
  type SqlParam,
  type SqlResult,
  type SqlRow,
  type SqlStatement,
  type Statements,
} from "./dialect.ts";
import { toRow } from "./tx.ts";

const OPS: Record<Compare["result"], string> = {
  equal: "=",
  not_equal: "<>",
  greater: ">",
  less: "<",
};

/** The previous row `o` is a live key (not missing, not a tombstone). */
const LIVE = "(o.id IS NOT NULL AND o.deleted = 0)";
const CREATE_REVISION = "CASE WHEN o.created = 1 THEN o.id ELSE o.create_revision END";
const COLUMNS = "name, created, deleted, create_revision, prev_revision, lease, value, " +
  "old_value, version";

const TARGETS: Record<Exclude<Compare["target"], "value">, string> = {
  mod: "o.id",
  version: "o.version",
  lease: "o.lease",
  create: CREATE_REVISION,
};

/** The compares on `o` as etcd evaluates them: a missing key is the zero KeyValue. */
function condition(compare: Compare[], d: KeyTxnDialect): string {
  return compare.map((c) =>
    c.target === "value"
      ? `(${LIVE} AND COALESCE(o.value, ${d.emptyBytes}) ${OPS[c.result]} ${d.bytes})`
      : `(CASE WHEN ${LIVE} THEN ${TARGETS[c.target]} ELSE 0 END) ${OPS[c.result]} ${d.int}`
  ).join(" AND ") || "1 = 1";
}

/** The row a txn inserts, computed from `o`, and the condition it is inserted on. */
function insertion(k: KeyTxn, d: KeyTxnDialect): { values: string; guard: string } {
  const cond = condition(k.compare, d);
  if (k.success.type === "put") {
    return {
      values: `?, CASE WHEN ${LIVE} THEN 0 ELSE 1 END, 0, ` +
        `CASE WHEN ${LIVE} THEN ${CREATE_REVISION} ELSE 0 END, COALESCE(o.id, 0), ${d.int}, ` +
        `${d.bytes}, o.value, CASE WHEN ${LIVE} THEN o.version + 1 ELSE 1 END`,
      guard: cond,
    };
  }
  return {
    values: `?, 0, 1, 0, o.id, 0, ${d.bytes}, o.value, o.version + 1`,
    guard: `${LIVE} AND ${cond}`,
  };
}

function insertParams(k: KeyTxn): SqlParam[] {
  const w = k.success;
  return w.type === "put" ? [k.name, w.lease, w.value] : [k.name, null];
}

function operands(k: KeyTxn): SqlParam[] {
  return k.compare.map((c) => c.operand);
}

/** MySQL: the key's latest id into the session variable `@kp`. */
const LATEST_ID_SQL = "SET @kp = (SELECT MAX(id) FROM kine WHERE name = ?)";
/** The put shape of a bulk load's row: its values are parameters. */
const PUT: KeyTxn["success"] = { type: "put", value: new Uint8Array(0), lease: 0, prevKv: false };

/** The key's latest row as `o`'s columns; `id` is how it is found. */
function latestRow(id: string): string {
  return `SELECT ${cols(false)} FROM (SELECT 1 AS one) AS d LEFT JOIN kine ON kine.id = ${id}`;
}

/** The statement's cache key: what its text depends on. */
function shapeOf(k: KeyTxn): string {
  return `keytxn:${k.success.type}:${k.compare.map((c) => `${c.target}.${c.result}`).join(",")}`;
}

/** The statements of one txn, in order (read back by {@link keyTxnOutcome}). */
export function keyTxnStatements(sql: Statements, d: KeyTxnDialect, k: KeyTxn): SqlStatement[] {
  const shape = shapeOf(k);
  const { values, guard } = insertion(k, d);
  const cond = condition(k.compare, d);
  const ops = operands(k);
  const insert = `INTO kine(${COLUMNS}) SELECT ${values} FROM `;
  if (d.shape === "cte") {
    const text = sql.cached(
      shape,
      () =>
        `WITH o AS (${latestRow("(SELECT MAX(id) FROM kine WHERE name = ?)")}), ` +
        `i AS (INSERT ${insert}o WHERE ${guard} ON CONFLICT DO NOTHING RETURNING id) ` +
        `SELECT (SELECT id FROM i), (SELECT MAX(id) FROM kine), ${cond}, o.* FROM o`,
    );
    return [{ sql: text, params: [k.name, ...insertParams(k), ...ops, ...ops] }];
  }
  return [
    {
      sql: sql.cached("keytxn:latest", () => LATEST_ID_SQL),
      params: [k.name],
    },
    {
      sql: sql.cached(
        `${shape}:insert`,
        () => `INSERT IGNORE ${insert}(${latestRow("@kp")}) AS o WHERE ${guard}`,
      ),
      params: [...insertParams(k), ...ops],
    },
    {
      sql: sql.cached(
        `${shape}:read`,
        () =>
          `SELECT NULL, (SELECT MAX(id) FROM kine), ${cond}, o.* FROM (${latestRow("@kp")}) AS o`,
      ),
      params: ops,
    },
  ];
}

/** What one txn's statements ({@link keyTxnStatements}) returned, as its outcome. */
export function keyTxnOutcome(d: KeyTxnDialect, results: SqlResult[]): KeyTxnRow {
  if (d.shape === "cte") return answer(results[0].rows[0]);
  // MySQL: the insert reports its row apart (affected rows, insert id).
  const insert = results[1];
  return answer(results[2].rows[0], insert.changes > 0 ? insert.lastId : null);
}

/**
 * A txn's outcome from its answer row (`written id or NULL, current, ok,
 * latest row…`); `written`, where given, stands for the row's first column.
 */
function answer(r: SqlRow, written?: number | null): KeyTxnRow {
  const id = written === undefined ? (r[0] == null ? null : Number(r[0])) : written;
  return {
    written: id,
    current: Math.max(Number(r[1] ?? 0), id ?? 0),
    succeeded: Boolean(Number(r[2])),
    latest: r[3] == null ? null : toRow(r.slice(3)),
  };
}

/**
 * A bulk load's puts, each row computed from its key's latest row as a single
 * put would be, then the highest id of the keys, which is the txn's revision
 * (our rows are the keys' latest in our transaction). Plain inserts: another
 * writer's row on a key fails the txn whole. PostgreSQL: one multi-row
 * `INSERT … SELECT`. MySQL: a single-row insert per put (the latest id in a
 * session variable), since InnoDB reserves ids in growing blocks for an
 * `INSERT … SELECT` of unknown length and loses those it does not use,
 * which would leave gaps in the revisions.
 */
export function bulkStatements(
  sql: Statements,
  d: KeyTxnDialect,
  insertSuffix: string,
  puts: BulkPut[],
): SqlStatement[] {
  const n = puts.length;
  const top = {
    sql: sql.cached(
      `bulk-top:${n}`,
      () => `SELECT MAX(id) FROM kine WHERE name IN (${Array(n).fill("?").join(", ")})`,
    ),
    params: puts.map((p) => p.name),
  };
  if (d.shape === "variable") {
    const latest = sql.cached("keytxn:latest", () => LATEST_ID_SQL);
    const row = sql.cached("bulk:row", () => {
      const { values } = insertion({ name: "", compare: [], success: PUT, failureGet: false }, d);
      return `INSERT INTO kine(${COLUMNS}) SELECT ${values} FROM (${latestRow("@kp")}) AS o`;
    });
    return [
      ...puts.flatMap((p) => [
        { sql: latest, params: [p.name] },
        { sql: row, params: [p.name, p.lease, p.value] },
      ]),
      top,
    ];
  }
  const rows = sql.cached(`bulk:${n}`, () => {
    const first = `SELECT ${d.int} AS ord, ${d.text} AS k_name, ${d.int} AS k_lease, ` +
      `${d.bytes} AS k_value`;
    const union = [first, ...Array(n - 1).fill("SELECT ?, ?, ?, ?")].join(" UNION ALL ");
    return `INSERT INTO kine(${COLUMNS}) SELECT o.k_name, CASE WHEN ${LIVE} THEN 0 ELSE 1 END, 0, ` +
      `CASE WHEN ${LIVE} THEN ${CREATE_REVISION} ELSE 0 END, COALESCE(o.id, 0), o.k_lease, ` +
      `o.k_value, o.value, CASE WHEN ${LIVE} THEN o.version + 1 ELSE 1 END FROM (` +
      `SELECT v.ord, v.k_name, v.k_lease, v.k_value, ${cols(false)} FROM (${union}) AS v ` +
      "LEFT JOIN kine ON kine.id = (SELECT MAX(m.id) FROM kine AS m WHERE m.name = v.k_name)" +
      `) AS o ORDER BY o.ord${insertSuffix}`;
  });
  return [{ sql: rows, params: puts.flatMap((p, i) => [i, p.name, p.lease, p.value]) }, top];
}

/** The revision of a bulk load from what {@link bulkStatements} returned. */
export function bulkRevision(results: SqlResult[]): number {
  return Number(results[results.length - 1].rows[0][0]);
}
