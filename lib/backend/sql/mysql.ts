/**
 * MySQL and MariaDB through mysql2, with Go's go-sql-driver DSN form
 * (`user:pass@tcp(host:port)/db?params`, `user@unix(/path)/db`) as upstream
 * kine takes it, and upstream's schema (an ascii `VARCHAR(630)` key column).
 */
import mysql from "mysql2/promise";
import { dsnError } from "../errors.ts";
import type { StoreFailure } from "../logstructured/log.ts";
import { mysqlLogin } from "./auth/mysql.ts";
import { connectWithRetry, tlsFiles } from "./connect.ts";
import {
  type Dialect,
  errorCode,
  type SqlConn,
  type SqlDriver,
  type SqlEngine,
  type SqlOptions,
  type SqlParam,
  type SqlResult,
  type SqlRow,
  type SqlStatement,
} from "./dialect.ts";

/** The key column's width in bytes (upstream's `VARCHAR(630) CHARACTER SET ascii`). */
const MAX_KEY = 630;
/** Client codes and server errnos that mean the server cannot be reached or went away. */
const CONNECTION_LOST = new Set([
  "PROTOCOL_CONNECTION_LOST",
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_SERVER_SHUTDOWN",
  "ER_CON_COUNT_ERROR",
  "ER_CONNECTION_KILLED",
  "ER_CLIENT_INTERACTION_TIMEOUT",
]);

function unreachable(err: unknown): boolean {
  const e = err as { code?: string; fatal?: boolean };
  return CONNECTION_LOST.has(e?.code ?? "") || e?.fatal === true;
}

export const mysqlDialect: Dialect = {
  name: "mysql",
  param: () => "?",
  insertSuffix: "",
  maxKeyChar: 0x7f,
  insertWithValues: false,
  keyError(key) {
    // deno-lint-ignore no-control-regex
    if (/[^\x01-\x7f]/.test(key)) {
      return "etcdserver: key must be ASCII without NUL on MySQL (its key column is ascii)";
    }
    if (key.length > MAX_KEY) return `etcdserver: key is longer than ${MAX_KEY} bytes (MySQL)`;
    return undefined;
  },
  classify(err): StoreFailure {
    const e = err as { errno?: number; code?: string; message?: string };
    const code = errorCode(err);
    if (e?.errno === 1062) {
      return {
        kind: /for key '(\w+\.)?PRIMARY'/.test(e.message ?? "") ? "gap_race" : "conflict",
        code,
      };
    }
    // Deadlock, lock wait timeout, and InnoDB's "Failed to read auto-increment value", which
    // MariaDB reports for an insert that raced another process's (it succeeds when run again).
    if (e?.errno === 1213 || e?.errno === 1205 || e?.errno === 1467) return { kind: "retry", code };
    if (unreachable(err)) return { kind: "connection", code };
    return { kind: "other", code };
  },
  // Table exists, duplicate column, duplicate index name.
  isAlreadyThere: (err) => [1050, 1060, 1061].includes((err as { errno?: number })?.errno ?? 0),
  orderedListJoin: "",
  leaseUpsertSql: "INSERT INTO kine_lease(id, ttl, expires_at) VALUES(?, ?, ?) " +
    "ON DUPLICATE KEY UPDATE ttl = VALUES(ttl), expires_at = VALUES(expires_at)",
  schema: [
    `CREATE TABLE IF NOT EXISTS kine (
      id BIGINT UNSIGNED AUTO_INCREMENT,
      name VARCHAR(630) CHARACTER SET ascii,
      created INTEGER,
      deleted INTEGER,
      create_revision BIGINT UNSIGNED,
      prev_revision BIGINT UNSIGNED,
      lease BIGINT,
      value MEDIUMBLOB,
      old_value MEDIUMBLOB,
      PRIMARY KEY (id)
    )`,
    "CREATE INDEX kine_name_index ON kine (name)",
    "CREATE INDEX kine_name_id_index ON kine (name,id)",
    "CREATE INDEX kine_id_deleted_index ON kine (id,deleted)",
    "CREATE INDEX kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "CREATE TABLE IF NOT EXISTS kine_lease (id BIGINT PRIMARY KEY, ttl BIGINT NOT NULL, " +
    "expires_at BIGINT NOT NULL)",
  ],
  migrations: [
    {
      needed: "SELECT COUNT(*) = 0 FROM information_schema.COLUMNS WHERE " +
        "table_schema = DATABASE() AND table_name = 'kine' AND column_name = 'version'",
      apply: "ALTER TABLE kine ADD COLUMN version BIGINT",
    },
    {
      // etcd lease IDs are 64-bit; upstream's INTEGER column holds TTLs only.
      needed: "SELECT COUNT(*) > 0 FROM information_schema.COLUMNS WHERE " +
        "table_schema = DATABASE() AND table_name = 'kine' AND column_name = 'lease' " +
        "AND data_type = 'int'",
      apply: "ALTER TABLE kine MODIFY COLUMN lease BIGINT",
    },
  ],
  compactSql: "DELETE kv FROM kine AS kv INNER JOIN (" +
    "SELECT kp.prev_revision AS id FROM kine AS kp WHERE kp.name != 'compact_rev_key' " +
    "AND kp.prev_revision != 0 AND kp.id > ? AND kp.id <= ? UNION " +
    "SELECT kd.id AS id FROM kine AS kd WHERE kd.deleted != 0 AND kd.id > ? AND kd.id <= ?) AS ks " +
    "ON kv.id = ks.id",
  sizeSql: "SELECT SUM(data_length + index_length) FROM information_schema.TABLES " +
    "WHERE table_schema = DATABASE() AND table_name = 'kine'",
  fillRetryDelayMs: 0,
  insertIgnore: { verb: "INSERT IGNORE INTO", suffix: "" },
  // A locking read of an id another transaction inserted and has not committed fails at once.
  fillGuard: {
    sql: "SELECT id FROM kine WHERE id IN (?) FOR UPDATE NOWAIT",
    perId: true,
    held: ["ER_LOCK_WAIT_TIMEOUT", "ER_LOCK_NOWAIT"],
  },
  // A shared lock waits for an insert's transaction to end; in autocommit it is let go at once.
  waitingRead: " LOCK IN SHARE MODE",
  keyTxn: { int: "?", bytes: "?", text: "?", emptyBytes: "''", shape: "variable" },
};

/** What a go-sql-driver DSN says, ready for mysql2. */
export interface MysqlSettings {
  user: string;
  password: string;
  host?: string;
  port?: number;
  socketPath?: string;
  database: string;
  ssl?: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean };
  connectTimeout: number;
  /** go-sql-driver's `allowCleartextPasswords=true`: consent to cleartext passwords without TLS. */
  allowCleartextPasswords: boolean;
  /** The DSN with its password masked, for messages. */
  display: string;
}

/**
 * Parses go-sql-driver's DSN: `[user[:password]@][net[(addr)]]/dbname[?params]`.
 * Empty means `root@unix(/var/run/mysqld/mysqld.sock)/` (`root@tcp(127.0.0.1)/`
 * with backend TLS); the database defaults to `kubernetes`. `tls=true`,
 * `skip-verify` and `preferred` are understood; backend TLS files select a
 * verified TLS connection as upstream's registered `kine` config does.
 */
export function parseMysqlDsn(dsn: string, tls: SqlOptions["tls"]): MysqlSettings {
  const useTls = Boolean(tls.caFile || tls.certFile || tls.keyFile);
  if (dsn === "") dsn = useTls ? "root@tcp(127.0.0.1)/" : "root@unix(/var/run/mysqld/mysqld.sock)/";
  const q = dsn.indexOf("?");
  const params = new URLSearchParams(q < 0 ? "" : dsn.slice(q + 1));
  const main = q < 0 ? dsn : dsn.slice(0, q);
  const slash = main.lastIndexOf("/");
  if (slash < 0) throw dsnError("invalid DSN: missing the slash separating the database name");
  const database = main.slice(slash + 1) || "kubernetes";
  const before = main.slice(0, slash);
  const at = before.lastIndexOf("@");
  const userinfo = at < 0 ? "" : before.slice(0, at);
  const address = at < 0 ? before : before.slice(at + 1);
  const colon = userinfo.indexOf(":");
  const user = colon < 0 ? userinfo : userinfo.slice(0, colon);
  const password = colon < 0 ? "" : userinfo.slice(colon + 1);
  const m = /^(\w*)(?:\((.*)\))?$/.exec(address);
  if (!m) throw dsnError(`invalid DSN: network address not terminated (missing closing brace)`);
  const net = m[1] || "tcp";
  const addr = m[2] ?? "";
  const s: MysqlSettings = {
    user: user || "root",
    password,
    database,
    connectTimeout: 10_000,
    allowCleartextPasswords: params.get("allowCleartextPasswords") === "true",
    display: `${user || "root"}${password ? ":***" : ""}@${net}(${addr})/${database}`,
  };
  if (net === "unix") s.socketPath = addr || "/var/run/mysqld/mysqld.sock";
  else if (net === "tcp" || net === "tcp6") {
    const hp = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(addr) ?? [];
    s.host = hp[1] || "127.0.0.1";
    s.port = Number(hp[2] ?? 3306);
  } else throw dsnError(`invalid DSN: unknown network ${net}`);
  const timeout = params.get("timeout");
  if (timeout) s.connectTimeout = (Number.parseFloat(timeout) || 10) * 1000;
  const mode = params.get("tls") ?? (useTls ? "kine" : "false");
  if (mode !== "false") {
    s.ssl = {
      ...tlsFiles(tls.caFile, tls.certFile, tls.keyFile),
      rejectUnauthorized: mode !== "skip-verify" && mode !== "preferred" && !tls.skipVerify,
    };
  }
  return s;
}

/** Bytes as a hex literal, written in by mysql2's escaping as is (`toSqlString`). */
class HexLiteral {
  constructor(private readonly bytes: Uint8Array) {}
  /**
   * V8's own hex codec: mysql2 would hex a Buffer through node:buffer, several
   * times slower in Deno, and then scan the hex for characters to escape.
   */
  toSqlString(): string {
    return `X'${this.bytes.toHex()}'`;
  }
}

/** Parameters as mysql2's escaping takes them: bytes as hex literals. */
function bytes(params: SqlParam[]): unknown[] {
  return params.map((p) => p instanceof Uint8Array ? new HexLiteral(p) : p);
}

/** A pool or connection of mysql2's callback API (what its promise wrapper wraps). */
interface Queryable {
  query(options: mysql.QueryOptions, done: (err: unknown, result: unknown) => void): unknown;
}

/** The callback API under a promise wrapper's pool or connection. */
function core(db: mysql.Pool | mysql.PoolConnection): Queryable {
  return ("pool" in db ? db.pool : db.connection) as unknown as Queryable;
}

/**
 * A query through mysql2's callback API: its promise wrapper captures a stack
 * trace for every query, a cost on every read and write for a stack nobody reads.
 */
function query(db: Queryable, options: mysql.QueryOptions): Promise<unknown> {
  return new Promise((resolve, reject) =>
    db.query(options, (err: unknown, result: unknown) => err ? reject(err) : resolve(result))
  );
}

class MysqlConn implements SqlConn {
  constructor(private readonly db: Queryable) {}

  async all(_name: string, sql: string, params: SqlParam[]): Promise<SqlRow[]> {
    return await query(this.db, { sql, values: bytes(params), rowsAsArray: true }) as SqlRow[];
  }

  async run(
    _name: string,
    sql: string,
    params: SqlParam[],
  ): Promise<{ changes: number; lastId: number }> {
    const header = await query(this.db, { sql, values: bytes(params) }) as mysql.ResultSetHeader;
    return { changes: header.affectedRows, lastId: Number(header.insertId) };
  }
}

/** Statements prepared per connection at most: MariaDB caps them server-wide (16,382). */
const MAX_PREPARED = 32;
/** MariaDB's answer to a PREPARE past `max_prepared_stmt_count`. */
const ER_MAX_PREPARED_STMT_COUNT_REACHED = 1461;

/**
 * A pipeline's statements as one multi-statement text. Where `prepared`
 * (MariaDB) is given, each statement marked `prepare` (a kube txn's; a bulk
 * load's texts are many and rarer) is prepared once per connection (SQL
 * `PREPARE`, which lives in the session) and run as `EXECUTE … USING` its
 * parameters as literals: the server then parses a short `EXECUTE` instead of
 * the whole statement every time, which was the largest share of its CPU per
 * write. `at[i]` is where statement i's result is among the text's results.
 */
function pipelineText(
  statements: SqlStatement[],
  prepared?: Map<string, string>,
): { sql: string; at: number[]; added: [string, string][] } {
  const parts = ["START TRANSACTION"];
  const at: number[] = [];
  const added: [string, string][] = [];
  const fresh = new Map<string, string>();
  for (const s of statements) {
    const values = bytes(s.params) as never[];
    let name = prepared?.get(s.sql) ?? fresh.get(s.sql);
    if (
      prepared && s.prepare && name === undefined && prepared.size + fresh.size < MAX_PREPARED
    ) {
      name = `kine_p${prepared.size + fresh.size}`;
      fresh.set(s.sql, name);
      added.push([s.sql, name]);
      parts.push(`PREPARE ${name} FROM ${mysql.escape(s.sql)}`);
    }
    at.push(parts.length);
    if (name === undefined) parts.push(mysql.format(s.sql, values));
    else {
      parts.push(
        values.length
          ? `EXECUTE ${name} USING ${values.map((v) => mysql.escape(v)).join(", ")}`
          : `EXECUTE ${name}`,
      );
    }
  }
  parts.push("COMMIT");
  return { sql: parts.join(";\n"), at, added };
}

class MysqlDriver implements SqlDriver {
  readonly reader: MysqlConn;
  /** Per connection (MariaDB only): the statement texts prepared in its session, by name. */
  #prepared?: WeakMap<object, Map<string, string>>;
  constructor(private readonly pool: mysql.Pool, mariadb: boolean) {
    this.reader = new MysqlConn(core(pool));
    // MySQL's EXECUTE takes user variables only, which would cost a SET per statement.
    if (mariadb) this.#prepared = new WeakMap();
  }

  async #on<T>(fn: (conn: mysql.PoolConnection) => Promise<T>): Promise<T> {
    const conn = await this.pool.getConnection();
    try {
      return await fn(conn);
    } finally {
      conn.release();
    }
  }

  transaction<T>(fn: (tx: SqlConn) => Promise<T>): Promise<T> {
    return this.#on(async (conn) => {
      await conn.query("START TRANSACTION");
      try {
        const result = await fn(new MysqlConn(core(conn)));
        await conn.query("COMMIT");
        return result;
      } catch (err) {
        await conn.query("ROLLBACK").catch(() => {});
        throw err;
      }
    });
  }

  /**
   * START TRANSACTION, the statements and COMMIT as one multi-statement
   * query: one packet, one round trip. The server stops at a failing
   * statement (COMMIT included), so the transaction is rolled back then.
   */
  pipeline(statements: SqlStatement[]): Promise<SqlResult[]> {
    return this.#on(async (conn) => {
      const session = core(conn);
      let prepared = this.#prepared?.get(session);
      if (this.#prepared && !prepared) this.#prepared.set(session, prepared = new Map());
      let results: unknown[];
      let text = pipelineText(statements, prepared);
      try {
        results = await this.#send(conn, text.sql);
      } catch (err) {
        // The server's cap on prepared statements (max_prepared_stmt_count) is reached: the
        // transaction was rolled back, so it runs again as plain text, as from now on do all.
        if ((err as { errno?: number })?.errno !== ER_MAX_PREPARED_STMT_COUNT_REACHED) throw err;
        this.#prepared = undefined;
        prepared = undefined;
        text = pipelineText(statements);
        results = await this.#send(conn, text.sql);
      }
      for (const [sql, name] of text.added) prepared!.set(sql, name);
      return text.at.map((i) => results[i]).map((r) => {
        if (Array.isArray(r)) return { rows: r as SqlRow[], changes: 0, lastId: 0 };
        const header = r as mysql.ResultSetHeader;
        return { rows: [], changes: header.affectedRows, lastId: Number(header.insertId) };
      });
    });
  }

  /** A multi-statement transaction's text; rolled back where it fails. */
  async #send(conn: mysql.PoolConnection, sql: string): Promise<unknown[]> {
    try {
      return await query(core(conn), { sql, rowsAsArray: true }) as unknown[];
    } catch (err) {
      // What it prepared before the failure is prepared again under the same name next time.
      await conn.query("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  setup<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T> {
    return this.#on((conn) => fn(new MysqlConn(core(conn))));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** mysql2 options for the DSN's server, logging in with `login` (RDS tokens, auth/mysql.ts). */
function poolOptions(
  s: MysqlSettings,
  o: SqlOptions,
  login: Pick<mysql.PoolOptions, "authPlugins">,
  database?: string,
): mysql.PoolOptions {
  return {
    ...login,
    user: s.user,
    password: s.password,
    host: s.host,
    port: s.port,
    socketPath: s.socketPath,
    database,
    ssl: s.ssl,
    connectTimeout: s.connectTimeout,
    supportBigNumbers: true,
    connectionLimit: o.pool.maxOpen > 0 ? o.pool.maxOpen : 10,
    maxIdle: o.pool.maxIdle,
    idleTimeout: o.pool.maxIdleTime > 0 ? o.pool.maxIdleTime : 2 ** 31 - 1,
    enableKeepAlive: true,
    // The write pipeline sends a batch as one multi-statement query (values are escaped).
    multipleStatements: true,
    // mysql2 scans a query's whole text for placeholders even where it has no values: a
    // pipeline's text, long with hex literals, comes with its values written in already.
    queryFormat: (sql: string, values: unknown) =>
      values === undefined || (Array.isArray(values) && values.length === 0)
        ? sql
        : mysql.format(sql, values as never[]),
  };
}

/** Creates the database when it is missing (connecting without one). */
async function ensureDatabase(
  s: MysqlSettings,
  o: SqlOptions,
  login: Pick<mysql.PoolOptions, "authPlugins">,
): Promise<void> {
  const conn = await mysql.createConnection(poolOptions(s, o, login));
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${s.database.replaceAll("`", "``")}\``);
  } finally {
    await conn.end().catch(() => {});
  }
}

export const mysqlEngine: SqlEngine = {
  dialect: mysqlDialect,
  async connect(dsn, o) {
    const s = parseMysqlDsn(dsn, o.tls);
    const login = mysqlLogin(s, o.identityProvider, s.allowCleartextPasswords);
    return await connectWithRetry(s.display, o, async () => {
      await ensureDatabase(s, o, login);
      const pool = mysql.createPool(poolOptions(s, o, login, s.database));
      // Every connection: the fork's bounded lock wait, and reads of committed rows only.
      pool.on("connection", (conn) => {
        conn.query("SET SESSION innodb_lock_wait_timeout = 10");
        conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
      });
      try {
        await pool.query("SELECT 1");
      } catch (err) {
        await pool.end().catch(() => {});
        throw err;
      }
      const [[version]] = await query(core(pool), {
        sql: "SELECT VERSION()",
        rowsAsArray: true,
      }) as string[][];
      return new MysqlDriver(pool, /mariadb/i.test(version));
    }, unreachable);
  },
};
