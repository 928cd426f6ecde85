/**
 * What differs between SQL engines behind kine's one revision table. A new
 * engine is a {@link Dialect} plus a {@link SqlEngine} that connects; the
 * statements, the schema set-up and the log logic are shared.
 */
import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import type {
  CommitNotifier,
  MaybePromise,
  StoreFailure,
  WriteOptions,
} from "../logstructured/log.ts";

export type SqlParam = string | number | null | Uint8Array | boolean;
/** A result row: its columns in the order the statement selects them. */
export type SqlRow = unknown[];

/** One connection, or one open transaction on it. */
export interface SqlConn {
  /** Runs a query; `name` labels it in metrics and slow-query logs. */
  all(name: string, sql: string, params: SqlParam[]): MaybePromise<SqlRow[]>;
  /** Runs a statement; `lastId` is the id it inserted, where the engine reports one. */
  run(
    name: string,
    sql: string,
    params: SqlParam[],
  ): MaybePromise<{ changes: number; lastId: number }>;
  /**
   * Sends a statement without waiting for its answer, where the engine
   * pipelines (PostgreSQL): it costs no round trip of its own, and an error
   * surfaces at the next statement that is waited for.
   */
  send?(name: string, sql: string): void;
  /**
   * Runs a `COPY … FROM STDIN` statement with `data` as its whole input,
   * where the engine has one (PostgreSQL); settles once the server has taken
   * it all.
   */
  copyIn?(sql: string, data: Uint8Array): Promise<void>;
}

/** One statement of a {@link SqlDriver.pipeline}, with `?` placeholders already bound. */
export interface SqlStatement {
  sql: string;
  params: SqlParam[];
  /**
   * Run often with this text (a kube txn's): worth preparing once per
   * connection where the driver prepares (MariaDB). Others go as text.
   */
  prepare?: boolean;
}

/** What one statement of a pipeline returned: its rows, or its count and inserted id. */
export interface SqlResult {
  rows: SqlRow[];
  changes: number;
  lastId: number;
}

/** A pool of connections to one database. */
export interface SqlDriver {
  /** Autocommit reads. */
  readonly reader: SqlConn;
  /** Runs `fn` in one write transaction (immediate/serializable); commits if it resolves. */
  transaction<T>(fn: (tx: SqlConn) => Promise<T>, options?: WriteOptions): Promise<T>;
  /**
   * Runs the statements in order in one write transaction and commits it, in
   * one round trip: BEGIN, the statements and COMMIT leave together. Where a
   * statement fails, the transaction is rolled back and the error thrown.
   * Engines that cannot send them together leave it out.
   */
  pipeline?(statements: SqlStatement[]): Promise<SqlResult[]>;
  /** Gives free space back, as `LogStore.defragment`; engines that need nothing leave it out. */
  defragment?(exclusive: <T>(step: () => Promise<T>) => Promise<T>): Promise<void>;
  /** Run after a successful compaction, as `LogStore.afterCompact`; most engines need nothing. */
  afterCompact?(): void;
  /**
   * Runs schema set-up on one connection, the way the engine wants DDL run
   * (SQLite: one immediate transaction, waiting out other processes' locks;
   * PostgreSQL: without the pool's lock_timeout).
   */
  setup<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T>;
  /** Cross-process commit wake-ups, where the engine has them. */
  readonly notifier?: CommitNotifier;
  close(): Promise<void>;
}

/** Backend TLS, pool and logging settings every engine receives. */
export interface SqlOptions {
  tls: { caFile: string; certFile: string; keyFile: string; skipVerify: boolean };
  pool: {
    /** Idle connections kept; 0 = none kept. */
    maxIdle: number;
    /** Open connections at most; 0 = unlimited. */
    maxOpen: number;
    /** ms; 0 = unlimited. */
    maxLifetime: number;
    /** ms; 0 = unlimited. */
    maxIdleTime: number;
  };
  /** Statements slower than this (ms) are logged; 0 disables. */
  slowSqlThreshold: number;
  /** Slow statements at or above this (ms) are logged as warnings. */
  slowSqlWarningThreshold: number;
  /** The revision table's name (`kine`). */
  tableName: string;
  /** How long to keep trying to reach the database at start-up (ms). */
  retryTimeout: number;
  /** `--identity-provider`: `aws` signs an RDS IAM token for each new connection. */
  identityProvider: string;
  logger: Logger;
  metrics?: KineMetrics;
}

/** A SQL engine: what differs in its statements, and how to reach it. */
export interface SqlEngine {
  readonly dialect: Dialect;
  /** Parses the DSN, creates the database if missing, and opens a pool. */
  connect(dsn: string, options: SqlOptions): Promise<SqlDriver>;
}

export interface Dialect {
  readonly name: string;
  /** Placeholder for the n-th (1-based) parameter. */
  param(n: number): string;
  /** `RETURNING id` where the engine does not report a last insert id. */
  readonly insertSuffix: string;
  /**
   * Insert with `VALUES(…)` rather than `SELECT …`: PostgreSQL types
   * parameters from the columns only there; MySQL cannot read the table it
   * inserts into from a subquery in `VALUES`.
   */
  readonly insertWithValues: boolean;
  /**
   * A row's old value goes in as a parameter where the writer has it, instead
   * of a subquery on `kine`: SQLite stages the row of an insert that reads its
   * own table in a temporary table first (a third more CPU per put than a
   * plain `VALUES`). The network engines read it server-side rather than
   * receive the value twice.
   */
  readonly oldValueParam?: boolean;
  /** The highest UTF-16 code unit a stored key may hold (MySQL's ascii column: 0x7f). */
  readonly maxKeyChar: number;
  /** Keys that are not UTF-8 text are stored as BLOBs (SQLite); else refused (`keys.ts`). */
  readonly binaryKeys?: boolean;
  /** Why the engine cannot store `key`, or undefined if it can. */
  keyError(key: string): string | undefined;
  /** What an engine error means for the log (see {@link StoreFailure}). */
  classify(err: unknown, table: string): StoreFailure;
  /** True for a schema error that means "already there" (an index or column that exists). */
  isAlreadyThere(err: unknown): boolean;
  /**
   * A join that keeps the left side's order (SQLite: `CROSS JOIN`), so a list
   * streams in key order from the index and stops at its limit; empty where
   * the engine needs an explicit ORDER BY.
   */
  readonly orderedListJoin: string;
  /** Insert-or-replace of a lease row; params id, ttl, expires_at. */
  readonly leaseUpsertSql: string;
  /** Schema statements, idempotent: upstream kine's tables and indexes. */
  readonly schema: string[];
  /**
   * Changes kine-for-Deno makes to upstream's table, in order, each a query
   * whose one value is true (non-zero) while the change is needed and the
   * statement that makes it: the nullable `version` column (upstream's rows
   * leave it empty; upstream ignores it), and where needed a 64-bit `lease`.
   */
  readonly migrations: { needed: string; apply: string }[];
  /** DELETE of superseded rows and tombstones with ids in (`?`, `?`], the span given twice. */
  readonly compactSql: string;
  /** Bytes used by the table, one row with column `size`. */
  readonly sizeSql: string;
  /** Bytes the database takes, free space included (one row, one column); absent = `sizeSql`. */
  readonly allocatedSizeSql?: string;
  /** How long the poll loop waits for a missing id to commit before filling it. */
  readonly fillRetryDelayMs: number;
  /**
   * An insert that skips rows whose unique key is taken instead of failing:
   * the statement's verb and its tail (`INSERT IGNORE INTO` on MySQL,
   * `… ON CONFLICT DO NOTHING` elsewhere).
   */
  readonly insertIgnore: { verb: string; suffix: string };
  /**
   * How a gap fill finds an id held by a transaction in flight without
   * waiting for it: a statement run first in the fill's transaction (with a
   * `?` per id where `perId`), and the error codes that then mean "held".
   * Absent (SQLite, one writer): the fill waits for the lock.
   */
  readonly fillGuard?: { sql: string; perId: boolean; held: string[] };
  /**
   * A clause that makes the poll loop's read of missing ids wait for the
   * transactions that hold them (MySQL: ` LOCK IN SHARE MODE`, which waits
   * on another transaction's uncommitted insert until it commits or rolls
   * back, and in autocommit keeps no lock). Absent where a read never waits
   * (PostgreSQL, whose commits notify instead; SQLite, one writer).
   */
  readonly waitingRead?: string;
  /**
   * Where the engine takes arrays: an `id =` operand matching any id of an
   * array given as one text parameter (`{1,2,3}`), so a read of many rows by
   * id binds one value, not one per id (PostgreSQL: `ANY(CAST(? AS BIGINT[]))`).
   */
  readonly anyId?: string;
  /**
   * Where the engine can join many blobs into one in an aggregate: the
   * aggregate expressions (over the rows of one read by id) of the ids and of
   * the values' byte lengths, each as comma-separated text, and of the values
   * joined. A read of 512 values is then one row and one buffer instead of
   * 512 rows and 512 buffers (a third of the CPU on SQLite; on PostgreSQL one
   * hex decode, and the per-row cost of postgres.js, gone). Every aggregate
   * of one query sees the rows in the same order, so the three line up.
   */
  readonly joinedValues?: { ids: string; lengths: string; bytes: string };
  /**
   * How a single-key txn (`KeyTxn`) is one statement's work here, where the
   * engine can (see `key_txn.ts`); absent = every txn takes the general path.
   */
  readonly keyTxn?: KeyTxnDialect;
}

/** The engine-specific parts of the key-txn statements (`key_txn.ts`). */
export interface KeyTxnDialect {
  /** A bigint parameter (`CAST(? AS BIGINT)` where the engine cannot infer it). */
  readonly int: string;
  /** A bytes parameter. */
  readonly bytes: string;
  /** A text parameter. */
  readonly text: string;
  /** An empty byte string literal. */
  readonly emptyBytes: string;
  /**
   * PostgreSQL: one statement per txn (a CTE whose insert is conditional);
   * MySQL: the latest id in a session variable, the conditional insert, then
   * the row read back.
   */
  readonly shape: "cte" | "variable";
}

/** The engine's code of an error, for metrics and logs: `code`, `errno` or "". */
export function errorCode(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown };
  return String(e?.code ?? e?.errno ?? "");
}

/**
 * Renames upstream's table in a statement: every identifier that starts with
 * `kine` (the table, `kine.col`, `kine_lease`, index names) takes `table`
 * instead, so several clusters can share one database.
 */
export function renameTable(sql: string, table: string): string {
  return table === "kine" ? sql : sql.replace(/\bkine(?=\b|_)/g, table);
}

/** A table name kine accepts: an unquoted identifier every engine takes as it is written. */
export const TABLE_NAME = /^[a-z_][a-z0-9_]{0,47}$/;

/** Rewrites `?` placeholders into the dialect's own, in order. */
export function bind(dialect: Dialect, sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => dialect.param(++n));
}

const COLS = "kine.id, kine.name, kine.created, kine.deleted, kine.create_revision, " +
  "kine.prev_revision, kine.lease";

/**
 * Per-key version. Kine-for-Deno stores it in the `version` column, which
 * upstream kine neither has nor fills; for upstream's rows it is counted: the
 * rows of the key from its create row up to this one, a lower bound once
 * compaction removed some of them (at least 1).
 */
const VERSION = "COALESCE(kine.version, CASE WHEN kine.created = 1 THEN 1 ELSE " +
  "(SELECT COUNT(*) FROM kine AS v WHERE v.name = kine.name AND v.id >= kine.create_revision " +
  "AND v.id <= kine.id) END) AS version";

/** The columns a `LogRow` is read from, of the table `kine` (see `toRow` in tx.ts). */
export function cols(keysOnly: boolean): string {
  return keysOnly ? `${COLS}, ${VERSION}` : `${COLS}, kine.value, ${VERSION}`;
}

/** Which keys an events query covers: all, one, `[start, end)` or open-ended. */
export type EventRange = "all" | "exact" | "range" | "from";

/**
 * How a key range's bounds compare. No engine stores a NUL in a key, so a
 * bound holding one is cut there: a start of `k\0…` is "after k" (`>`), an
 * end of `k\0…` is "up to k" (`<=`), which select the same keys and never
 * hand a NUL to the database.
 */
export interface Bounds {
  lo: ">=" | ">";
  /** "" when the range has no upper bound. */
  hi: "<" | "<=" | "";
}

const LIVE = "kine.deleted = 0 AND kine.name != 'compact_rev_key'";

/**
 * A read of the rows `where` selects, with what events need of the previous
 * row, in id order, then `tail` (a limit, a locking clause).
 */
function eventsSql(where: string, tail: string): string {
  return `SELECT ${COLS}, kine.value, ` +
    "COALESCE(kine.version, CASE WHEN kine.created = 1 THEN 1 ELSE " +
    "(SELECT COUNT(*) FROM kine AS v WHERE v.name = kine.name AND v.id <= kine.id AND " +
    "v.id >= (CASE WHEN kine.deleted = 0 THEN kine.create_revision " +
    "WHEN p.created = 1 THEN p.id WHEN p.id IS NOT NULL THEN p.create_revision " +
    "ELSE kine.id END)) END) AS version, kine.old_value, " +
    "p.created AS p_created, p.create_revision AS p_create_revision, p.lease AS p_lease " +
    "FROM kine LEFT JOIN kine AS p ON p.id = kine.prev_revision AND kine.created = 0 " +
    `WHERE ${where} ORDER BY kine.id ASC${tail}`;
}

/** Statement texts, built once per dialect and shape. */
export class Statements {
  readonly #cache = new Map<string, string>();
  constructor(readonly dialect: Dialect, readonly table: string) {}

  #get(key: string, build: () => string): string {
    let sql = this.#cache.get(key);
    if (sql === undefined) {
      sql = renameTable(bind(this.dialect, build()), this.table);
      this.#cache.set(key, sql);
    }
    return sql;
  }

  revisions(): string {
    return this.#get("rev", () =>
      "SELECT (SELECT MAX(id) FROM kine) AS current_rev, " +
      "(SELECT MAX(prev_revision) FROM kine WHERE name = 'compact_rev_key') AS compact_rev");
  }

  latest(): string {
    return this.#get("latest", () =>
      `SELECT ${cols(false)} FROM kine WHERE kine.id = ` +
      "(SELECT MAX(id) FROM kine WHERE name = ?)");
  }

  /** Params: key, rev. */
  getAt(keysOnly: boolean): string {
    return this.#get(`get${keysOnly}`, () =>
      `SELECT ${cols(keysOnly)} FROM kine WHERE kine.id = ` +
      `(SELECT MAX(id) FROM kine WHERE name = ? AND id <= ?) AND ${LIVE}`);
  }

  #latestIds(b: Bounds): string {
    return `SELECT MAX(id) AS id FROM kine WHERE name ${b.lo} ? ` +
      `${b.hi ? `AND name ${b.hi} ? ` : ""}AND id <= ? GROUP BY name`;
  }

  /** Params: start, [end], rev, [limit]. */
  list(b: Bounds, keysOnly: boolean, limited: boolean): string {
    return this.#get(
      `list${b.lo}${b.hi}${keysOnly}${limited}`,
      () =>
        this.dialect.orderedListJoin
          // Rows come out in name order from the index walk: a limit stops it early.
          ? `SELECT ${cols(keysOnly)} FROM (${this.#latestIds(b)}) AS mkv ` +
            `${this.dialect.orderedListJoin} kine ON kine.id = mkv.id WHERE ${LIVE}` +
            (limited ? " LIMIT ?" : "")
          : `SELECT ${cols(keysOnly)} FROM kine INNER JOIN (${this.#latestIds(b)}) ` +
            `AS mkv USING (id) WHERE ${LIVE} ORDER BY kine.name ASC${limited ? " LIMIT ?" : ""}`,
    );
  }

  /**
   * One page of a limited list where the engine has no order-keeping join:
   * the latest row of each of the next `?` names in key order, tombstones
   * included (the caller skips them and asks for the next page), so that an
   * index walk in name order stops at the limit instead of grouping the whole
   * range. Params: start, [end], rev, limit.
   */
  listPage(b: Bounds, keysOnly: boolean): string {
    return this.#get(
      `page${b.lo}${b.hi}${keysOnly}`,
      () =>
        `SELECT ${cols(keysOnly)} FROM kine INNER JOIN (SELECT MAX(id) AS id FROM kine ` +
        `WHERE name ${b.lo} ? ${b.hi ? `AND name ${b.hi} ? ` : ""}AND id <= ? ` +
        "GROUP BY name ORDER BY name LIMIT ?) AS mkv ON kine.id = mkv.id ORDER BY kine.name ASC",
    );
  }

  /** Rows in id order without values, for the key index. Params: after, upTo, limit. */
  indexRows(): string {
    return this.#get(
      "index_rows",
      () =>
        `SELECT ${cols(true)} FROM kine WHERE kine.id > ? AND kine.id <= ? ` +
        "ORDER BY kine.id ASC LIMIT ?",
    );
  }

  /**
   * `id, value` of `n` rows by id, or where the engine has
   * {@link Dialect.joinedValues} one row of the ids, lengths and values
   * joined. Params: the ids, or where the engine has
   * {@link Dialect.anyId} (whatever `n`) their array as text.
   */
  values(n: number): string {
    const any = this.dialect.anyId;
    const joined = this.dialect.joinedValues;
    const what = joined ? `${joined.ids}, ${joined.lengths}, ${joined.bytes}` : "id, value";
    return any
      ? this.#get("values_any", () => `SELECT ${what} FROM kine WHERE id = ${any}`)
      : this.#get(
        `values${n}`,
        () => `SELECT ${what} FROM kine WHERE id IN (${Array(n).fill("?").join(", ")})`,
      );
  }

  /** Params: rev. */
  leased(): string {
    return this.#get(
      "leased",
      () =>
        `SELECT ${cols(true)} FROM (SELECT MAX(id) AS id FROM kine WHERE id <= ? GROUP BY name) ` +
        `AS mkv ${this.dialect.orderedListJoin || "INNER JOIN"} kine ON kine.id = mkv.id ` +
        `WHERE ${LIVE} AND kine.lease != 0`,
    );
  }

  /** Params: start, [end], rev. */
  count(b: Bounds): string {
    return this.#get(
      `count${b.lo}${b.hi}`,
      () =>
        `SELECT COUNT(*) AS n FROM kine INNER JOIN (${this.#latestIds(b)}) AS mkv ` +
        `USING (id) WHERE ${LIVE}`,
    );
  }

  /** Params: key, rev. */
  countOne(): string {
    return this.#get("count1", () =>
      "SELECT COUNT(*) AS n FROM kine WHERE kine.id = " +
      `(SELECT MAX(id) FROM kine WHERE name = ? AND id <= ?) AND ${LIVE}`);
  }

  /**
   * Rows after a revision with what events need of the previous row.
   * Params: after, [upTo], [key | start[, end]], limit.
   */
  events(range: EventRange, bounded: boolean, b: Bounds): string {
    return this.#get(`events${range}${bounded}${b.lo}${b.hi}`, () => {
      const where = ["kine.id > ?"];
      if (bounded) where.push("kine.id <= ?");
      if (range === "exact") where.push("kine.name = ?");
      if (range === "from" || range === "range") where.push(`kine.name ${b.lo} ?`);
      if (range === "range") where.push(`kine.name ${b.hi} ?`);
      return eventsSql(where.join(" AND "), " LIMIT ?");
    });
  }

  /**
   * The rows of `n` ids as {@link events} reads them; `waiting`, once the
   * transactions holding them have ended (see {@link Dialect.waitingRead}).
   * Params: the ids.
   */
  eventsOf(n: number, waiting: boolean): string {
    return this.#get(
      `events_of${n}${waiting}`,
      () =>
        eventsSql(
          `kine.id IN (${Array(n).fill("?").join(", ")})`,
          waiting ? this.dialect.waitingRead ?? "" : "",
        ),
    );
  }

  /**
   * The rows of `n` ids and those above an id, in id order, at most a limit.
   * Params: the lowest id, the ids, the id, the limit. The lowest id bounds
   * the index scan: without it an ordered scan of the primary key may start
   * at the table's first row and filter its way up.
   */
  eventsOfAndAfter(n: number): string {
    return this.#get(
      `events_of_after${n}`,
      () =>
        eventsSql(
          `kine.id >= ? AND (kine.id IN (${Array(n).fill("?").join(", ")}) OR kine.id > ?)`,
          " LIMIT ?",
        ),
    );
  }

  /** The dialect's fill guard for `n` ids (see {@link Dialect.fillGuard}); undefined if none. */
  fillGuard(n: number): string | undefined {
    const guard = this.dialect.fillGuard;
    if (!guard) return undefined;
    return this.#get(
      `fill_guard${guard.perId ? n : 0}`,
      () => guard.perId ? guard.sql.replace("?", Array(n).fill("?").join(", ")) : guard.sql,
    );
  }

  /** Gap tombstones for `n` ids, skipping ids that are taken. Params: id, name per row. */
  fill(n: number): string {
    return this.#get(`fill${n}`, () => {
      const { verb, suffix } = this.dialect.insertIgnore;
      const rows = Array(n).fill("(?, ?, 0, 1, 0, 0, 0, NULL, NULL)").join(", ");
      return `${verb} kine(id, name, created, deleted, create_revision, prev_revision, lease, ` +
        `value, old_value) VALUES ${rows}${suffix}`;
    });
  }

  insert(): string {
    return this.#get("insert", () => {
      const row = "?, ?, ?, ?, ?, ?, ?, (SELECT value FROM kine WHERE id = ?), ?";
      return "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, " +
        "value, old_value, version) " +
        (this.dialect.insertWithValues ? `VALUES(${row})` : `SELECT ${row}`) +
        this.dialect.insertSuffix;
    });
  }

  /** {@link insert} with the old value a parameter ({@link Dialect.oldValueParam}). */
  insertKnown(): string {
    return this.#get(
      "insert_known",
      () =>
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, " +
        "value, old_value, version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)" + this.dialect.insertSuffix,
    );
  }

  rowsNamed(): string {
    return this.#get(
      "named",
      () => "SELECT id, created, prev_revision FROM kine WHERE name = ? ORDER BY id ASC",
    );
  }

  deleteRow(): string {
    return this.#get("delete", () => "DELETE FROM kine WHERE id = ?");
  }

  /** Params: target, from. Moves the compact revision only if it is still `from`. */
  updateCompact(): string {
    return this.#get(
      "setcompact",
      () =>
        "UPDATE kine SET prev_revision = ? WHERE name = 'compact_rev_key' AND prev_revision = ?",
    );
  }

  compact(): string {
    return this.#get("compact", () => this.dialect.compactSql);
  }

  /**
   * Params: from, target, rows. The id of the first superseding row after
   * the first `rows` of them in `(from, target]`: the terms of SQLite's
   * partial compaction index, so there it reads that index alone.
   */
  compactBound(): string {
    return this.#get(
      "compact_bound",
      () =>
        "SELECT id FROM kine WHERE name != 'compact_rev_key' AND prev_revision != 0 " +
        "AND id > ? AND id <= ? ORDER BY id LIMIT 1 OFFSET ?",
    );
  }

  leases(one: boolean): string {
    return this.#get(
      `leases${one}`,
      () => `SELECT id, ttl, expires_at FROM kine_lease${one ? " WHERE id = ?" : ""}`,
    );
  }

  /** Params: holder, until, role, holder, now. */
  renewRole(): string {
    return this.#get(
      "role_renew",
      () =>
        "UPDATE kine_role SET holder = ?, expires_at = ? WHERE name = ? AND " +
        "(holder = ? OR expires_at < ?)",
    );
  }

  /** Params: role, holder, until. */
  insertRole(): string {
    return this.#get("role_insert", () => {
      const { verb, suffix } = this.dialect.insertIgnore;
      return `${verb} kine_role(name, holder, expires_at) VALUES(?, ?, ?)${suffix}`;
    });
  }

  leaseUpsert(): string {
    return this.#get("lease_upsert", () => this.dialect.leaseUpsertSql);
  }

  leaseDelete(): string {
    return this.#get("lease_delete", () => "DELETE FROM kine_lease WHERE id = ?");
  }

  /** A statement text built once per `key` (the key-txn statements, by shape). */
  cached(key: string, build: () => string): string {
    return this.#get(key, build);
  }

  size(): string {
    return this.#get("size", () => this.dialect.sizeSql);
  }

  allocatedSize(): string {
    return this.#get("allocated", () => this.dialect.allocatedSizeSql ?? this.dialect.sizeSql);
  }
}
