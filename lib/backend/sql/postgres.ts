/**
 * PostgreSQL (and `postgresql://`) through postgres.js: upstream kine's
 * schema and DSN conventions, the fork's lock_timeout, and a mode without
 * server-side prepared statements for PgBouncer's transaction pooling.
 */
import postgres from "postgres";
import { dsnError } from "../errors.ts";
import type { CommitNotifier, StoreFailure } from "../logstructured/log.ts";
import { takeKerberosParams } from "./auth/kerberos_dsn.ts";
import { type PgLoginOptions, postgresLogin, processEnv } from "./auth/postgres.ts";
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

/** SQLSTATEs and client codes that mean the server cannot be reached or went away. */
const CONNECTION_LOST =
  /^(08|57P0[1-3]|53300)|^(CONNECTION_|CONNECT_TIMEOUT|ECONN|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH)/;

export const postgresDialect: Dialect = {
  name: "postgres",
  param: (n) => `$${n}`,
  insertSuffix: " RETURNING id",
  maxKeyChar: 0xffff,
  insertWithValues: true,
  keyError: (key) =>
    key.includes("\0")
      ? "etcdserver: key contains a NUL byte, which PostgreSQL cannot store"
      : undefined,
  classify(err, table): StoreFailure {
    const code = errorCode(err);
    if (code === "23505") {
      const constraint = (err as { constraint_name?: string }).constraint_name;
      return { kind: constraint === `${table}_pkey` ? "gap_race" : "conflict", code };
    }
    if (code === "40001" || code === "40P01") return { kind: "retry", code };
    if (CONNECTION_LOST.test(code)) return { kind: "connection", code };
    return { kind: "other", code };
  },
  // 23505 here is two processes creating the same table or index at once.
  isAlreadyThere: (err) => ["42P07", "42701", "42710", "23505"].includes(errorCode(err)),
  orderedListJoin: "",
  // 512 parameters cost postgres.js a third of the CPU of reading 512 values.
  anyId: "ANY(CAST(? AS BIGINT[]))",
  joinedValues: {
    ids: "string_agg(CAST(id AS text), ',')",
    lengths: "string_agg(CAST(octet_length(coalesce(value, ''::bytea)) AS text), ',')",
    bytes: "string_agg(coalesce(value, ''::bytea), ''::bytea)",
  },
  leaseUpsertSql: "INSERT INTO kine_lease(id, ttl, expires_at) VALUES(?, ?, ?) " +
    "ON CONFLICT(id) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at",
  schema: [
    `CREATE TABLE IF NOT EXISTS kine (
      id BIGSERIAL PRIMARY KEY,
      name text COLLATE "C",
      created INTEGER,
      deleted INTEGER,
      create_revision BIGINT,
      prev_revision BIGINT,
      lease BIGINT,
      value bytea,
      old_value bytea
    )`,
    "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)",
    "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)",
    "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "CREATE INDEX IF NOT EXISTS kine_list_query_index on kine(name, id DESC, deleted)",
    "CREATE TABLE IF NOT EXISTS kine_lease (id BIGINT PRIMARY KEY, ttl BIGINT NOT NULL, " +
    "expires_at BIGINT NOT NULL)",
  ],
  migrations: [
    {
      needed: "SELECT COUNT(*) = 0 FROM information_schema.columns WHERE " +
        "table_schema = current_schema() AND table_name = 'kine' AND column_name = 'version'",
      apply: "ALTER TABLE kine ADD COLUMN IF NOT EXISTS version BIGINT",
    },
    {
      // etcd lease IDs are 64-bit; upstream's INTEGER column holds TTLs only.
      needed: "SELECT COUNT(*) > 0 FROM information_schema.columns WHERE " +
        "table_schema = current_schema() AND table_name = 'kine' AND column_name = 'lease' " +
        "AND data_type = 'integer'",
      apply: "ALTER TABLE kine ALTER COLUMN lease SET DATA TYPE BIGINT",
    },
  ],
  compactSql: "DELETE FROM kine AS kv USING (" +
    "SELECT kp.prev_revision AS id FROM kine AS kp WHERE kp.name != 'compact_rev_key' " +
    "AND kp.prev_revision != 0 AND kp.id > ? AND kp.id <= ? UNION " +
    "SELECT kd.id AS id FROM kine AS kd WHERE kd.deleted != 0 AND kd.id > ? AND kd.id <= ?) AS ks " +
    "WHERE kv.id = ks.id",
  sizeSql: "SELECT pg_total_relation_size('kine')",
  fillRetryDelayMs: 1,
  insertIgnore: { verb: "INSERT INTO", suffix: " ON CONFLICT DO NOTHING" },
  // The insert would wait for the transaction inserting the same id: 1 ms, then lock_not_available.
  fillGuard: { sql: "SET LOCAL lock_timeout = '1ms'", perId: false, held: ["55P03"] },
  keyTxn: {
    int: "CAST(? AS BIGINT)",
    bytes: "CAST(? AS BYTEA)",
    text: "CAST(? AS TEXT)",
    emptyBytes: "CAST('' AS BYTEA)",
    shape: "cte",
  },
};

/** What a `postgres://` DSN says, ready for postgres.js. */
export interface PostgresSettings {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  ssl: postgres.Options<never>["ssl"];
  /** Server-side prepared statements; off for PgBouncer's transaction pooling. */
  prepare: boolean;
  /** Startup parameters (lock_timeout, application_name, …). */
  connection: Record<string, string>;
  /**
   * `SET LOCAL` statements run at the start of every write transaction: with
   * the simple protocol (PgBouncer's transaction pooling, which refuses other
   * startup parameters and may hand each transaction another server
   * connection) the session settings travel this way instead.
   */
  perTransaction: string[];
  connectTimeout: number;
  /** The DSN with its password masked, for messages. */
  display: string;
}

/** DSN parameters that select the simple protocol (pgx's names), kept out of the startup packet. */
const NO_PREPARE: Record<string, (v: string) => boolean> = {
  default_query_exec_mode: (v) => v !== "cache_statement",
  statement_cache_capacity: (v) => Number(v) === 0,
  prefer_simple_protocol: (v) => v === "true",
};

/**
 * Parses the part after `postgres://` as upstream does: empty means
 * `postgres:postgres@localhost`, the database defaults to `kubernetes` and is
 * lower-cased, backend TLS files fold into `sslcert`/`sslkey`/`sslrootcert`
 * (with `sslmode=verify-full`) unless the DSN sets them, and the fork's
 * `lock_timeout=10000` applies unless the DSN sets one.
 */
export function parsePostgresDsn(dsn: string, tls: SqlOptions["tls"]): PostgresSettings {
  let url: URL;
  try {
    url = new URL(`postgres://${dsn || "postgres:postgres@localhost/"}`);
  } catch {
    throw dsnError(
      "failed to parse datastore DSN URL; ensure that parameters containing special characters use percent-encoding",
    );
  }
  const q = url.searchParams;
  const folded: [string, string][] = [
    ["sslcert", tls.certFile],
    ["sslkey", tls.keyFile],
    ["sslrootcert", tls.caFile],
  ];
  let added = false;
  for (const [name, file] of folded) {
    if (file && !q.has(name)) {
      q.set(name, file);
      added = true;
    }
  }
  if (added && !q.has("sslmode")) q.set("sslmode", "verify-full");
  let prepare = true;
  const connection: Record<string, string> = { application_name: "kine" };
  let connectTimeout = 30;
  for (const [name, value] of q) {
    if (name in NO_PREPARE) prepare &&= !NO_PREPARE[name](value);
    else if (name === "connect_timeout") connectTimeout = Number(value) || connectTimeout;
    else if (!name.startsWith("ssl")) connection[name] = value;
  }
  connection.lock_timeout ??= "10000";
  const perTransaction: string[] = [];
  if (!prepare) {
    for (const [name, value] of Object.entries(connection)) {
      if (name === "application_name") continue;
      if (!/^[a-z_][a-z0-9_.]*$/.test(name)) throw dsnError(`invalid parameter name ${name}`);
      perTransaction.push(`SET LOCAL ${name} = '${value.replaceAll("'", "''")}'`);
      delete connection[name];
    }
  }
  const database = decodeURIComponent(url.pathname.replace(/^\//, "")).toLowerCase() ||
    "kubernetes";
  const user = decodeURIComponent(url.username) || "postgres";
  const display = `postgres://${
    url.username ? `${url.username}${url.password ? ":***" : ""}@` : ""
  }${url.host}/${database}`;
  return {
    host: url.hostname.replace(/^\[|\]$/g, "") || "localhost",
    port: Number(url.port) || 5432,
    user,
    password: decodeURIComponent(url.password),
    database,
    ssl: sslOption(q, tls.skipVerify),
    prepare,
    connection,
    perTransaction,
    connectTimeout,
    display,
  };
}

/** libpq's sslmode (and files) as postgres.js's `ssl` option. */
function sslOption(q: URLSearchParams, skipVerify: boolean): PostgresSettings["ssl"] {
  const mode = q.get("sslmode") ?? "prefer";
  if (mode === "disable") return false;
  const files = tlsFiles(q.get("sslrootcert"), q.get("sslcert"), q.get("sslkey"));
  if (mode === "verify-full" || mode === "verify-ca") {
    return { ...files, rejectUnauthorized: !skipVerify };
  }
  if (Object.keys(files).length > 0) return { ...files, rejectUnauthorized: false };
  return mode === "require" ? "require" : mode === "allow" ? "allow" : "prefer";
}

type Sql = postgres.Sql<Record<string, never>>;

/**
 * A parameter as a literal of the statement's text, readable whatever
 * `standard_conforming_strings` says (E'' strings, bytes in hex).
 */
function literal(p: SqlParam): string {
  if (p === null) return "NULL";
  if (typeof p === "boolean") return p ? "TRUE" : "FALSE";
  if (typeof p === "number") {
    if (!Number.isFinite(p)) throw new TypeError(`not a number a statement can carry: ${p}`);
    // In parentheses, so that a negative number after a minus never reads as a `--` comment.
    return p < 0 ? `(${p})` : String(p);
  }
  if (p instanceof Uint8Array) return `decode('${p.toHex()}', 'hex')`;
  return `E'${p.replaceAll("\\", "\\\\").replaceAll("'", "''")}'`;
}

/**
 * The statement with its parameters written in. postgres.js describes every
 * statement with parameters that is not yet prepared on the connection before
 * running it: a round trip of its own that also holds back every statement
 * queued behind it. Without parameters there is nothing to describe.
 */
function inline(query: string, params: SqlParam[]): string {
  if (params.length === 0) return query;
  const { text, slots } = placeholders(query);
  let out = text[0];
  for (let i = 0; i < slots.length; i++) out += literal(params[slots[i]]) + text[i + 1];
  return out;
}

/** A statement's text split at its `$n` placeholders, and the parameter index of each. */
interface Placeholders {
  text: string[];
  slots: number[];
}

/**
 * The last statements split ({@link inline}): a statement's texts come from
 * one cache, so the same few are split again and again (a bulk insert's
 * thousands of placeholders cost a regular expression's callback each).
 */
const SPLIT = new Map<string, Placeholders>();
const SPLIT_MAX = 256;

function placeholders(query: string): Placeholders {
  let p = SPLIT.get(query);
  if (p) return p;
  p = { text: [], slots: [] };
  const re = /\$(\d+)/g;
  let from = 0;
  for (let m = re.exec(query); m; m = re.exec(query)) {
    p.text.push(query.slice(from, m.index));
    p.slots.push(Number(m[1]) - 1);
    from = m.index + m[0].length;
  }
  p.text.push(query.slice(from));
  if (SPLIT.size >= SPLIT_MAX) SPLIT.delete(SPLIT.keys().next().value!);
  SPLIT.set(query, p);
  return p;
}

class PgConn implements SqlConn {
  /** Statements sent without waiting; the next awaited one, or the commit, settles them. */
  readonly sent: Promise<unknown>[] = [];
  constructor(private readonly sql: Sql, private readonly prepare: boolean) {}

  async all(_name: string, query: string, params: SqlParam[]): Promise<SqlRow[]> {
    return await this.#query(query, params).values();
  }

  async run(
    _name: string,
    query: string,
    params: SqlParam[],
  ): Promise<{ changes: number; lastId: number }> {
    const r = await this.#query(query, params);
    return { changes: r.count, lastId: 0 };
  }

  /** Unprepared (PgBouncer), parameters travel in the text: no describe round trip per statement. */
  #query(query: string, params: SqlParam[]) {
    return this.prepare
      ? this.sql.unsafe(query, params as never[], { prepare: true })
      : this.sql.unsafe(inline(query, params), [], { prepare: false });
  }

  async copyIn(query: string, data: Uint8Array): Promise<void> {
    const stream = await this.sql.unsafe(query).writable();
    await new Promise<void>((resolve, reject) =>
      stream.write(data, (err) => (err ? reject(err) : resolve()))
    );
    // Sends CopyDone at once (nothing is left to write). postgres.js never ends the stream
    // when the server refuses the data (its error lands on a query already settled): the
    // next statement, queued behind the COPY, answers either way, failing on a transaction
    // the refusal aborted.
    stream.end();
    try {
      await this.sql.unsafe("SELECT 1");
    } catch (err) {
      throw new Error(`COPY refused: ${(err as Error).message}`);
    }
  }

  send(_name: string, query: string): void {
    const q = this.sql.unsafe(query);
    q.execute();
    q.catch(() => {}); // its error is the aborted transaction's, reported by what follows
    this.sent.push(q);
  }
}

/**
 * Commit wake-ups between kine processes on one database: a NOTIFY on the
 * table's channel after each commit, and a LISTEN on postgres.js's own
 * listener connection, which reconnects and listens again by itself.
 *
 * The NOTIFY is never part of a write transaction: PostgreSQL commits a
 * transaction that notified while holding one lock for the whole cluster,
 * across its WAL flush, so writers that notify in their own transaction
 * commit one after another, each waiting for its own flush (no group commit
 * between the servers). The NOTIFY's own transaction commits without waiting
 * for the flush (`synchronous_commit` off: it writes nothing a crash could
 * lose), so it holds that lock only for a moment. The one-round-trip batch
 * has the server send it right after the batch's COMMIT, in the same
 * message; other writes send it after their commit.
 */
class PgNotifier implements CommitNotifier {
  /**
   * Marks this process's payloads (`<revision>:<tag>`): its commits reach its
   * own watchers from the write itself, so their echo wakes nothing here.
   * Other processes read the revision.
   */
  readonly tag = crypto.randomUUID().slice(0, 8);
  #sending = false;
  /** The highest revision committed and not yet announced; 0 = none. */
  #pending = 0;
  /** The highest revision a batch's own NOTIFY (sent by the server after its commit) announced. */
  #covered = 0;
  constructor(private readonly sql: Sql, readonly channel: string) {}

  /**
   * The select-list items that send the announcement of `revision` (an SQL
   * text expression) in a transaction that commits without waiting for its
   * WAL flush: it writes nothing a crash could lose, and holds the cluster's
   * NOTIFY lock only for a moment. After a batch's COMMIT nothing may fail
   * (the batch would be answered as failed though committed), so its commit
   * waits for that lock without a timeout, and nothing is sent while the
   * NOTIFY queue is half full (a listener elsewhere that stopped reading):
   * peers then fall back on their poll, and the queue never overflows here.
   */
  statement(revision: string): string {
    return "set_config('synchronous_commit', 'off', true), set_config('lock_timeout', '0', true), " +
      `CASE WHEN pg_notification_queue_usage() < 0.5 THEN ` +
      `pg_notify('${this.channel}', ${revision} || ':${this.tag}') END`;
  }

  /** A batch's own NOTIFY announced everything up to `revision`. */
  covered(revision: number): void {
    this.#covered = Math.max(this.#covered, revision);
  }

  /** Commits that come while one NOTIFY is on its way share the next one. */
  announce(revision: number): void {
    if (revision <= this.#covered) return;
    this.#pending = Math.max(this.#pending, revision);
    if (this.#sending) return;
    this.#sending = true;
    this.#send();
  }

  /** The payload is the highest committed revision: a listener that has published it skips it. */
  async #send(): Promise<void> {
    try {
      while (this.#pending > 0) {
        const revision = this.#pending;
        this.#pending = 0;
        await this.sql.unsafe(`SELECT ${this.statement("CAST($1 AS TEXT)")}`, [revision]);
      }
    } catch {
      // Peers fall back on their poll; the next commit announces again.
      this.#pending = 0;
    } finally {
      this.#sending = false;
    }
  }

  async listen(wake: (revision: number) => void): Promise<void> {
    await this.sql.listen(this.channel, (payload) => {
      const [revision, tag] = payload.split(":");
      if (tag !== this.tag) wake(Number(revision) || 0);
    });
  }
}

class PgDriver implements SqlDriver {
  readonly reader: PgConn;
  /** None in PgBouncer mode: a LISTEN there lands on whichever server connection it got. */
  readonly notifier?: PgNotifier;
  constructor(
    private readonly sql: Sql,
    private readonly settings: PostgresSettings,
    channel: string,
  ) {
    this.reader = new PgConn(sql, settings.prepare);
    if (settings.prepare) this.notifier = new PgNotifier(sql, channel);
  }

  /**
   * One write transaction. postgres.js's own BEGIN settles it if the
   * connection dies mid-way (a reserved connection would be handed back to
   * the pool dead); through PgBouncer the session settings follow as
   * SET LOCAL, sent with the first statement rather than waited for.
   */
  async transaction<T>(fn: (tx: SqlConn) => Promise<T>): Promise<T> {
    return await this.sql.begin(async (tx) => {
      const conn = new PgConn(tx as unknown as Sql, this.settings.prepare);
      for (const statement of this.settings.perTransaction) conn.send("begin", statement);
      const result = await fn(conn);
      await Promise.all(conn.sent);
      return result;
    }) as T;
  }

  /**
   * The session settings (PgBouncer), the statements and, where peers
   * listen, COMMIT and a NOTIFY of the highest id, as one simple-protocol
   * query with the parameters written into the text: one message, one round
   * trip. PostgreSQL
   * runs the statements of one such message as one implicit transaction: a
   * failing statement rolls it all back and skips the rest, and nothing is
   * left open on the connection, which any query of the pool may use (no
   * reserved connection, no BEGIN, COMMIT or ROLLBACK to send). Each
   * statement must return rows (its answer is the result set it adds).
   */
  async pipeline(statements: SqlStatement[]): Promise<SqlResult[]> {
    if (statements.length === 0) return [];
    const notifier = this.notifier;
    // Where peers listen: COMMIT, then the NOTIFY in a transaction of its own (see PgNotifier),
    // sent by the server as soon as the batch has committed, with no round trip to us between.
    const tail = notifier
      ? [
        "COMMIT",
        `SELECT MAX(id), ${notifier.statement("CAST(MAX(id) AS TEXT)")} FROM ${notifier.channel}`,
      ]
      : [];
    const text = [
      ...this.settings.perTransaction,
      ...statements.map((s) => inline(s.sql, s.params)),
      ...tail,
    ].join(";\n");
    const answer = await this.sql.unsafe(text, [], { prepare: false }).values();
    // One result set per statement that returns rows, the settings' (if any) before them, then the
    // NOTIFY's; COMMIT adds none (postgres.js gives its tag to the set before it).
    const sets = ("command" in answer ? [answer] : answer) as postgres.RowList<SqlRow[]>[];
    const end = sets.length - (notifier ? 1 : 0);
    if (notifier) notifier.covered(Number(sets[sets.length - 1][0][0]));
    return sets.slice(end - statements.length, end).map((rows) => ({
      rows: [...rows],
      changes: rows.count ?? 0,
      lastId: 0,
    }));
  }

  /** DDL runs on one connection without the pool's lock_timeout, so it is never cut short. */
  async setup<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T> {
    const reserved = await this.sql.reserve();
    try {
      await reserved.unsafe("SET lock_timeout = 0");
      const result = await fn(new PgConn(reserved as unknown as Sql, false));
      await reserved.unsafe("RESET lock_timeout");
      return result;
    } finally {
      reserved.release();
    }
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }
}

/** postgres.js options for one database of the DSN's server, logging in with `login`. */
function clientOptions(
  s: PostgresSettings,
  o: SqlOptions,
  login: PgLoginOptions,
  database: string,
) {
  return {
    host: s.host,
    port: s.port,
    user: s.user,
    pass: s.password,
    database,
    ssl: s.ssl,
    prepare: s.prepare,
    connection: s.connection,
    connect_timeout: s.connectTimeout,
    max: o.pool.maxOpen > 0 ? o.pool.maxOpen : 10,
    idle_timeout: o.pool.maxIdleTime > 0 ? Math.max(1, Math.round(o.pool.maxIdleTime / 1000)) : 0,
    max_lifetime: o.pool.maxLifetime > 0
      ? Math.max(1, Math.round(o.pool.maxLifetime / 1000))
      : null,
    fetch_types: false,
    // bytea travels as hex text: V8's own hex codec is 4–8× faster than node:buffer's in Deno,
    // which was a fifth of the CPU of reading values (lists, migrate).
    types: {
      bytea: {
        to: 17,
        from: [17],
        serialize: (x: Uint8Array) => "\\x" + x.toHex(),
        parse: (x: string) => Uint8Array.fromHex(x.slice(2)),
      },
    },
    // postgres.js waits up to 20 s between reconnects after many failures: a database back
    // from a short outage would stay unused that long. Try again within a second instead.
    backoff: (retries: number) => Math.min(0.05 * 2 ** retries, 1),
    onnotice: () => {},
    ...login,
  };
}

/** Creates the database when it is missing, through the server's `postgres` database. */
async function ensureDatabase(
  s: PostgresSettings,
  o: SqlOptions,
  login: PgLoginOptions,
): Promise<void> {
  const admin = postgres({ ...clientOptions(s, o, login, "postgres"), max: 1 });
  try {
    const found = await admin.unsafe("SELECT 1 FROM pg_database WHERE datname = $1", [s.database]);
    if (found.length === 0) {
      await admin.unsafe(`CREATE DATABASE "${s.database.replaceAll('"', '""')}"`);
      o.logger.info("created database", { database: s.database });
    }
  } catch (err) {
    if (CONNECTION_LOST.test(errorCode(err))) throw err;
    o.logger.warn("failed to create database", { database: s.database, error: String(err) });
  } finally {
    await admin.end({ timeout: 1 });
  }
}

let guarded = false;

/**
 * postgres.js 3.4 runs a transaction's ROLLBACK on its connection even when
 * that connection has just closed (the server went away mid-transaction); the
 * write is flushed from a timer onto the dropped socket and throws a
 * TypeError no caller can catch, which would end the process. The
 * transaction itself has already failed with CONNECTION_CLOSED, so exactly
 * that error is swallowed.
 */
function guardDroppedSocketWrites(): void {
  if (guarded) return;
  guarded = true;
  globalThis.addEventListener("error", (e) => {
    const err = e.error;
    if (
      err instanceof TypeError && err.message.includes("reading 'write'") &&
      /postgres[@/].*connection\.js/.test(err.stack ?? "")
    ) e.preventDefault();
  });
}

export const postgresEngine: SqlEngine = {
  dialect: postgresDialect,
  async connect(dsn, o) {
    guardDroppedSocketWrites();
    // Kerberos (DSN parameters) and --identity-provider: logins beneath postgres.js (auth/).
    const { dsn: rest, kerberos } = takeKerberosParams(dsn, processEnv.env);
    const s = parsePostgresDsn(rest, o.tls);
    const login = await postgresLogin(s, kerberos, {
      identityProvider: o.identityProvider,
      ...processEnv,
    });
    return await connectWithRetry(s.display, o, async () => {
      await ensureDatabase(s, o, login);
      const sql = postgres(clientOptions(s, o, login, s.database)) as unknown as Sql;
      try {
        await sql.unsafe("SELECT 1");
      } catch (err) {
        await sql.end({ timeout: 1 });
        throw err;
      }
      return new PgDriver(sql, s, o.tableName);
    }, (err) => CONNECTION_LOST.test(errorCode(err)));
  },
};
