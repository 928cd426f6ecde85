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

/** The columns of `o` (the key's latest row) MySQL keeps in session variables `@o_<column>`. */
const O_COLUMNS = [
  "id",
  "name",
  "created",
  "deleted",
  "create_revision",
  "prev_revision",
  "lease",
  "value",
  "version",
];

/**
 * MySQL: the key's latest row into `@<prefix>_<column>` (all NULL if none)
 * and the log's highest id into `@<prefix>_current`. Always exactly one row,
 * so every variable is set anew each time.
 */
function latestInto(prefix: string): string {
  return `SELECT ${cols(false)}, (SELECT MAX(id) FROM kine) INTO ` +
    [...O_COLUMNS, "current"].map((c) => `@${prefix}_${c}`).join(", ") +
    " FROM (SELECT 1 AS one) AS d LEFT JOIN kine ON kine.id = " +
    "(SELECT MAX(m.id) FROM kine AS m WHERE m.name = ?)";
}

/**
 * An expression on `o` rewritten onto the session variables of
 * {@link latestInto} and {@link latestAssigned}: MySQL's insert then reads no table, where one reading
 * `kine` itself would copy what it read into a temporary table first.
 */
function onVariables(expr: string, prefix = "o"): string {
  return expr.replace(/\bo\.(\w+)/g, `@${prefix}_$1`);
}

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
      sql: sql.cached(`${shape}:latest`, () => latestAssigned(cond)),
      params: [...ops, k.name],
      prepare: true,
    },
    {
      sql: sql.cached(
        `${shape}:insert`,
        () => onVariables(`INSERT IGNORE ${insert}DUAL WHERE ${guard}`),
      ),
      params: [...insertParams(k), ...ops],
      prepare: true,
    },
  ];
}

/**
 * MySQL: the answer row of a txn (`NULL, current, ok, latest row…`, as the
 * PostgreSQL statement's) that also keeps the latest row in the session
 * variables `@o_<column>` and the log's highest id in `@o_current` for the
 * insert that follows: one statement where reading the variables back after
 * the insert took another. The row is the key's latest or all NULL (always
 * exactly one row, so every variable is set anew each time). Its columns are
 * named: mysql2 compiles a row parser per distinct list of column names, and
 * the compare's operands written into the text would name one anew per txn.
 */
function latestAssigned(cond: string): string {
  const assigned = O_COLUMNS.map((c, i) => `@o_${c} := r.${c} AS c${i + 3}`).join(", ");
  return `SELECT NULL AS c0, @o_current := (SELECT MAX(id) FROM kine) AS c1, ` +
    `${cond.replace(/\bo\.(\w+)/g, "r.$1")} AS c2, ${assigned} FROM (SELECT 1 AS one) AS d ` +
    `LEFT JOIN (SELECT ${cols(false)} FROM kine WHERE kine.id = ` +
    "(SELECT MAX(m.id) FROM kine AS m WHERE m.name = ?)) AS r ON TRUE";
}

/**
 * Whether a txn fits {@link keyTxnSetStatement}: no compare, or one on the
 * key's mod revision being equal to an operand (kube-apiserver's create,
 * update and delete; a plain Put or DeleteRange).
 */
export function setEligible(k: KeyTxn): boolean {
  const c = k.compare;
  return c.length === 0 ||
    (c.length === 1 && c[0].target === "mod" && c[0].result === "equal");
}

/** The key's mod revision as the compare sees it (a missing key or tombstone: 0). */
const MOD = `(CASE WHEN ${LIVE} THEN o.id ELSE 0 END)`;
/** Row `o` of the set statement: compares held (no compare, or the mod revision matches). */
const SET_OK = `(o.k_cmp IS NULL OR ${MOD} = o.k_cmp)`;

/**
 * PostgreSQL: txns on distinct keys, each {@link setEligible}, as one
 * statement, parsed and planned once for the lot instead of once per txn.
 * Each txn is a row of a `VALUES` list (order, key, delete?, mod operand or
 * NULL, lease, value), joined to its key's latest row; the rows whose
 * compares hold are inserted in the txns' order (so their ids follow it),
 * skipping any another writer took (`ON CONFLICT DO NOTHING`, as
 * {@link keyTxnStatements}); a row per txn comes back in order, shaped as
 * {@link keyTxnStatements}'s answer. The keys must differ: the statement
 * reads every latest row before it inserts any.
 */
export function keyTxnSetStatement(sql: Statements, d: KeyTxnDialect, ks: KeyTxn[]): SqlStatement {
  return setStatement(sql, d, ks, true);
}

/**
 * {@link keyTxnSetStatement}'s statement; without `skipTaken`, a row
 * another writer took fails the statement instead (a bulk load is whole).
 */
function setStatement(
  sql: Statements,
  d: KeyTxnDialect,
  ks: KeyTxn[],
  skipTaken: boolean,
): SqlStatement {
  const n = ks.length;
  const text = sql.cached(`${skipTaken ? "keytxn" : "bulk"}-set:${n}`, () => {
    const first = `(${d.int}, ${d.text}, ${d.int}, ${d.int}, ${d.int}, ${d.bytes})`;
    const values = [first, ...Array(n - 1).fill("(?, ?, ?, ?, ?, ?)")].join(", ");
    const put = "o.k_del = 0";
    return `WITH v(k_ord, k_name, k_del, k_cmp, k_lease, k_value) AS (VALUES ${values}), ` +
      // LATERAL: each key's row by its primary key. A plain join on the correlated MAX let
      // the planner hash the whole table instead, a cost that grew with the log.
      `o AS (SELECT v.*, l.* FROM v LEFT JOIN LATERAL (SELECT ${cols(false)} FROM kine ` +
      "WHERE kine.id = (SELECT MAX(m.id) FROM kine AS m WHERE m.name = v.k_name)) AS l ON TRUE), " +
      `i AS (INSERT INTO kine(${COLUMNS}) SELECT o.k_name, ` +
      `CASE WHEN ${put} AND NOT ${LIVE} THEN 1 ELSE 0 END, o.k_del, ` +
      `CASE WHEN ${put} AND ${LIVE} THEN ${CREATE_REVISION} ELSE 0 END, COALESCE(o.id, 0), ` +
      `o.k_lease, o.k_value, o.value, CASE WHEN ${LIVE} THEN o.version + 1 ELSE 1 END ` +
      `FROM o WHERE ${SET_OK} AND (${put} OR ${LIVE}) ORDER BY o.k_ord ` +
      `${skipTaken ? "ON CONFLICT DO NOTHING " : ""}RETURNING id, name) ` +
      // The current revision is the statement's last: a txn's key is no other's, so what it read
      // still holds there, and no txn is answered a revision below one answered before it.
      "SELECT i.id, GREATEST((SELECT MAX(id) FROM kine), (SELECT MAX(id) FROM i)), " +
      `${SET_OK}, o.id, o.name, o.created, o.deleted, ` +
      "o.create_revision, o.prev_revision, o.lease, o.value, o.version " +
      "FROM o LEFT JOIN i ON i.name = o.k_name ORDER BY o.k_ord";
  });
  const params = ks.flatMap((k, i): SqlParam[] => {
    const w = k.success;
    const cmp = k.compare.length ? k.compare[0].operand : null;
    return w.type === "put" ? [i, k.name, 0, cmp, w.lease, w.value] : [i, k.name, 1, cmp, 0, null];
  });
  return { sql: text, params };
}

/** The outcomes of {@link keyTxnSetStatement}'s txns, in order. */
export function keyTxnSetOutcomes(result: SqlResult): KeyTxnRow[] {
  return result.rows.map((r) => answer(r));
}

/** A batch of txns as statements, and how to read each txn's outcome back. */
export interface KeyTxnPlan {
  statements: SqlStatement[];
  /** The txns' outcomes, in order, from the statements' results. */
  outcomes(results: SqlResult[]): KeyTxnRow[];
}

/**
 * The statements of a batch, in order. On PostgreSQL, each run of
 * consecutive {@link setEligible} txns on distinct keys is one
 * {@link keyTxnSetStatement}; every other txn has its own statements.
 */
export function keyTxnPlan(sql: Statements, d: KeyTxnDialect, ks: KeyTxn[]): KeyTxnPlan {
  const parts: { statements: SqlStatement[]; read(r: SqlResult[]): KeyTxnRow[] }[] = [];
  let run: KeyTxn[] = [];
  let names = new Set<string>();
  const flush = () => {
    if (run.length > 1) {
      parts.push({
        statements: [keyTxnSetStatement(sql, d, run)],
        read: (r) => keyTxnSetOutcomes(r[0]),
      });
    } else if (run.length === 1) single(run[0]);
    run = [];
    names = new Set();
  };
  const single = (k: KeyTxn) =>
    parts.push({
      statements: keyTxnStatements(sql, d, k),
      read: (r) => [keyTxnOutcome(d, r)],
    });
  for (const k of ks) {
    if (d.shape !== "cte" || !setEligible(k)) {
      flush();
      single(k);
      continue;
    }
    if (names.has(k.name)) flush();
    run.push(k);
    names.add(k.name);
  }
  flush();
  return {
    statements: parts.flatMap((p) => p.statements),
    outcomes(results) {
      let at = 0;
      return parts.flatMap((p) => {
        const n = p.statements.length;
        at += n;
        return p.read(results.slice(at - n, at));
      });
    },
  };
}

/** What one txn's statements ({@link keyTxnStatements}) returned, as its outcome. */
export function keyTxnOutcome(d: KeyTxnDialect, results: SqlResult[]): KeyTxnRow {
  if (d.shape === "cte") return answer(results[0].rows[0]);
  // MySQL: the insert reports its row apart (affected rows, insert id).
  const insert = results[1];
  return answer(results[0].rows[0], insert.changes > 0 ? insert.lastId : null);
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
 * `INSERT … SELECT`. MySQL: each key's latest row into session variables of
 * its own, then one multi-row `INSERT … VALUES` computed from them, since
 * InnoDB reserves ids in growing blocks for an `INSERT … SELECT` of unknown
 * length and loses those it does not use, which would leave gaps in the
 * revisions (an insert of a known number of rows takes exactly that many).
 */
export function bulkStatements(sql: Statements, d: KeyTxnDialect, puts: BulkPut[]): SqlStatement[] {
  if (d.shape === "cte") {
    const ks = puts.map((p): KeyTxn => ({
      name: p.name,
      compare: [],
      success: { type: "put", value: p.value, lease: p.lease, prevKv: false },
      failureGet: false,
    }));
    return [setStatement(sql, d, ks, false)];
  }
  const n = puts.length;
  const { values } = insertion({ name: "", compare: [], success: PUT, failureGet: false }, d);
  const rows = sql.cached(
    `bulk:${n}`,
    () =>
      `INSERT INTO kine(${COLUMNS}) VALUES ` +
      puts.map((_, i) => `(${onVariables(values, `b${i}`)})`).join(", "),
  );
  const top = sql.cached(
    `bulk-top:${n}`,
    () => `SELECT MAX(id) FROM kine WHERE name IN (${Array(n).fill("?").join(", ")})`,
  );
  return [
    ...puts.map((p, i) => ({
      sql: sql.cached(`bulk:latest:${i}`, () => latestInto(`b${i}`)),
      params: [p.name],
    })),
    { sql: rows, params: puts.flatMap((p) => [p.name, p.lease, p.value]) },
    { sql: top, params: puts.map((p) => p.name) },
  ];
}

/** The revision of a bulk load from what {@link bulkStatements} returned. */
export function bulkRevision(results: SqlResult[]): number {
  return Math.max(...results[results.length - 1].rows.map((r) => Number(r[0])));
}
