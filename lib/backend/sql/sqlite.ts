/**
 * SQLite through Deno's built-in `node:sqlite`: one connection writes (every
 * transaction `BEGIN IMMEDIATE`), another reads, so reads never see
 * uncommitted rows and WAL readers never wait for the writer.
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import type { Logger } from "../../log/mod.ts";
import { dsnError, EndpointError, StoreBusy } from "../errors.ts";
import type {
  Dialect,
  SqlConn,
  SqlDriver,
  SqlEngine,
  SqlOptions,
  SqlParam,
  SqlRow,
} from "./dialect.ts";
import type { WriteOptions } from "../logstructured/log.ts";
import { WalKeeper } from "./wal.ts";

export const sqliteDialect: Dialect = {
  name: "sqlite",
  param: () => "?",
  insertSuffix: "",
  maxKeyChar: 0xffff,
  binaryKeys: true,
  insertWithValues: false,
  oldValueParam: true,
  keyError: () => undefined,
  // A busy database has already been waited for (busy_timeout): it is not retried on top.
  classify: (err) => {
    const text = String((err as Error)?.message ?? err);
    const code = String((err as { errstr?: string })?.errstr ?? (err as Error)?.name ?? "");
    if (/UNIQUE constraint failed/.test(text)) return { kind: "conflict", code };
    return { kind: "other", code };
  },
  isAlreadyThere: (err) => /duplicate column name|already exists/.test(String(err)),
  // group_concat appends the bytes it is given, NULs included; the CAST keeps them a BLOB. A
  // value stored as TEXT is measured in bytes (as a BLOB), not characters.
  joinedValues: {
    ids: "group_concat(id)",
    lengths: "group_concat(length(CAST(coalesce(value, x'') AS BLOB)))",
    bytes: "CAST(group_concat(coalesce(value, x''), x'') AS BLOB)",
  },
  schema: [
    `CREATE TABLE IF NOT EXISTS kine (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT,
      created INTEGER,
      deleted INTEGER,
      create_revision INTEGER,
      prev_revision INTEGER,
      lease INTEGER,
      value BLOB,
      old_value BLOB
    )`,
    "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)",
    "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)",
    "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "CREATE INDEX IF NOT EXISTS kine_id_compact_rev_key_with_prev_revision_index ON kine " +
    "(id, name, prev_revision) WHERE name != 'compact_rev_key' AND prev_revision != 0",
    // kine-for-Deno's leases; upstream kine neither reads nor minds this table.
    "CREATE TABLE IF NOT EXISTS kine_lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, " +
    "expires_at INTEGER NOT NULL)",
  ],
  migrations: [{
    needed: "SELECT COUNT(*) = 0 FROM pragma_table_info('kine') WHERE name = 'version'",
    apply: "ALTER TABLE kine ADD COLUMN version INTEGER",
  }],
  leaseUpsertSql: "INSERT INTO kine_lease(id, ttl, expires_at) VALUES(?, ?, ?) " +
    "ON CONFLICT(id) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at",
  compactSql: "DELETE FROM kine AS kv WHERE kv.id IN (" +
    "SELECT kp.prev_revision AS id FROM kine AS kp WHERE kp.name != 'compact_rev_key' " +
    "AND kp.prev_revision != 0 AND kp.id > ? AND kp.id <= ? UNION " +
    "SELECT kd.id AS id FROM kine AS kd WHERE kd.deleted != 0 AND kd.id > ? AND kd.id <= ?)",
  sizeSql: "SELECT ((SELECT page_count FROM pragma_page_count()) - " +
    "(SELECT freelist_count FROM pragma_freelist_count())) * " +
    "(SELECT page_size FROM pragma_page_size()) AS size",
  allocatedSizeSql: "SELECT (SELECT page_count FROM pragma_page_count()) * " +
    "(SELECT page_size FROM pragma_page_size()) AS size",
  fillRetryDelayMs: 0,
  insertIgnore: { verb: "INSERT INTO", suffix: " ON CONFLICT DO NOTHING" },
  orderedListJoin: "CROSS JOIN",
};

/** Settings taken from a `sqlite://` DSN (go-sqlite3 parameter names). */
export interface SqliteOptions {
  path: string;
  journalMode: string;
  busyTimeout: number;
  synchronous: string;
  txLock: "immediate" | "deferred" | "exclusive";
  disableCompactWalCheckpoint: boolean;
  disableWalAutocheckpoint: boolean;
  disableStartupVacuum: boolean;
  /** Parameters the DSN carries that have no effect here (see {@link SQLITE_PARAMETERS}). */
  unknown: string[];
}

/**
 * The parameters a SQLite DSN may carry: the ones kine applies, and `cache` (upstream's default
 * DSN says `cache=shared`, which means nothing to one process).
 */
export const SQLITE_PARAMETERS: readonly string[] = [
  "_txlock",
  "_busy_timeout",
  "_timeout",
  "_journal_mode",
  "_journal",
  "_synchronous",
  "_sync",
  "_kine_disable_compact_wal_checkpoint",
  "_kine_disable_wal_autocheckpoint",
  "_kine_disable_startup_vacuum",
  "cache",
];

export const DEFAULT_SQLITE_PATH = "./db/state.db";

/**
 * Parses the part after `sqlite://`. Parameters a DSN leaves out take the
 * values of kine's default DSN (WAL, 30 s busy timeout, NORMAL, immediate).
 */
export function parseSqliteDsn(dsn: string, litestream = false): SqliteOptions {
  const q = dsn.indexOf("?");
  let path = q < 0 ? dsn : dsn.slice(0, q);
  const params = new URLSearchParams(q < 0 ? "" : dsn.slice(q + 1));
  if (path.startsWith("file:")) path = path.slice(5);
  const pick = (...names: string[]) => names.map((n) => params.get(n)).find((v) => v != null);
  const txLock = (pick("_txlock") ?? "immediate").toLowerCase();
  if (txLock !== "immediate" && txLock !== "deferred" && txLock !== "exclusive") {
    throw new Error(`invalid _txlock: ${txLock}`);
  }
  const busy = Number(pick("_busy_timeout", "_timeout") ?? 30000);
  if (!Number.isInteger(busy) || busy < 0) throw new Error(`invalid _busy_timeout: ${busy}`);
  return {
    path: path === "" ? DEFAULT_SQLITE_PATH : path,
    journalMode: (pick("_journal_mode", "_journal") ?? "WAL").toUpperCase(),
    busyTimeout: busy,
    synchronous: (pick("_synchronous", "_sync") ?? "NORMAL").toUpperCase(),
    txLock,
    disableCompactWalCheckpoint: litestream || dsn.includes("_kine_disable_compact_wal_checkpoint"),
    disableWalAutocheckpoint: litestream || dsn.includes("_kine_disable_wal_autocheckpoint"),
    disableStartupVacuum: litestream || dsn.includes("_kine_disable_startup_vacuum"),
    unknown: [...new Set(params.keys())].filter((p) => !SQLITE_PARAMETERS.includes(p)),
  };
}

const IDENT = /^[A-Z]+$/;
/** `PRAGMA auto_vacuum` value of a file whose free pages `incremental_vacuum` gives back. */
const INCREMENTAL_VACUUM = 2;
/** Free pages one defragment step gives back (4 MiB at the default page size). */
const DEFRAG_STEP_PAGES = 1024;
/** Start-up VACUUM runs when at least 1/this of the pages are free. */
const VACUUM_FREE_FRACTION = 10;

class SqliteConn implements SqlConn {
  readonly #stmts = new Map<string, StatementSync>();
  constructor(readonly db: DatabaseSync) {}

  #prepare(sql: string): StatementSync {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      st.setReturnArrays(true); // positional rows: no object per row
      this.#stmts.set(sql, st);
    }
    return st;
  }

  all(_name: string, sql: string, params: SqlParam[]): SqlRow[] {
    return this.#prepare(sql).all(...(params as never[])) as unknown as SqlRow[];
  }

  run(_name: string, sql: string, params: SqlParam[]): { changes: number; lastId: number } {
    const r = this.#prepare(sql).run(...(params as never[]));
    return { changes: Number(r.changes), lastId: Number(r.lastInsertRowid) };
  }
}

/** True if `err` is SQLite's "another connection holds the lock" (SQLITE_BUSY). */
function isBusy(err: unknown): boolean {
  return /database is locked|SQLITE_BUSY/.test(String(err));
}

/**
 * Runs a start-up step again while another process holds a lock SQLite will
 * not wait for (switching the journal mode of a fresh file, for one), up to
 * the busy timeout.
 */
function whileBusy<T>(busyTimeout: number, step: () => T): T {
  const deadline = Date.now() + busyTimeout;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      return step();
    } catch (err) {
      if (!isBusy(err) || Date.now() > deadline) throw err;
      Atomics.wait(nap, 0, 0, 50); // start-up only: nothing else runs yet
    }
  }
}

function open(o: SqliteOptions): DatabaseSync {
  if (!IDENT.test(o.journalMode)) throw new Error(`invalid _journal_mode: ${o.journalMode}`);
  if (!IDENT.test(o.synchronous) && !/^[0-3]$/.test(o.synchronous)) {
    throw new Error(`invalid _synchronous: ${o.synchronous}`);
  }
  const db = new DatabaseSync(o.path);
  try {
    db.exec(`PRAGMA busy_timeout = ${o.busyTimeout}`);
    whileBusy(o.busyTimeout, () => {
      const { journal_mode: mode } = db.prepare("PRAGMA journal_mode").get() as {
        journal_mode: string;
      };
      if (mode.toUpperCase() !== o.journalMode) db.exec(`PRAGMA journal_mode = ${o.journalMode}`);
    });
    db.exec(`PRAGMA synchronous = ${o.synchronous}`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** `sqlite://` (and, with Litestream-safe options, `litestream://`) endpoints. */
export function sqliteEngine(litestream: boolean): SqlEngine {
  return {
    dialect: sqliteDialect,
    connect: (dsn, options) => {
      let parsed: SqliteOptions;
      try {
        parsed = parseSqliteDsn(dsn, litestream);
      } catch (err) {
        throw dsnError((err as Error).message);
      }
      try {
        return Promise.resolve(new SqliteDriver(parsed, options));
      } catch (err) {
        throw openError(parsed.path, err);
      }
    },
  };
}

/**
 * Names the file and why it cannot be opened: SQLite says only "unable to open database file", so
 * the operating system is asked the same question (open for writing, creating it) for the reason.
 */
function openError(path: string, err: unknown): unknown {
  const osReason = (e: unknown) =>
    String((e as Error)?.message ?? e).replace(/ \(os error.*$/s, "");
  // Creating the directory failed: the operating system's words say why.
  if (err instanceof Error && /^[^:]*\(os error \d+\): mkdir/.test(err.message)) {
    return new EndpointError(
      `cannot open SQLite database ${JSON.stringify(path)}: ${osReason(err)}`,
    );
  }
  if (!/unable to open database file|readonly database|disk I\/O error/.test(String(err))) {
    return err;
  }
  let reason = (err as Error).message.replace(/: .*$/s, "");
  try {
    Deno.openSync(path, { read: true, write: true, create: true }).close();
  } catch (probe) {
    reason = osReason(probe);
  }
  return new EndpointError(`cannot open SQLite database ${JSON.stringify(path)}: ${reason}`);
}

/** The SQLite driver: start-up maintenance, and the two connections. */
export class SqliteDriver implements SqlDriver {
  readonly reader: SqliteConn;
  readonly #writer: SqliteConn;
  readonly #begin: string;
  #wal?: WalKeeper;

  constructor(readonly options: SqliteOptions, { logger }: Pick<SqlOptions, "logger">) {
    const dir = options.path.includes("/")
      ? options.path.slice(0, options.path.lastIndexOf("/"))
      : "";
    if (dir && options.path !== ":memory:") Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const writer = open(options);
    if (!options.disableCompactWalCheckpoint) startupCheckpoint(writer, logger);
    if (options.disableWalAutocheckpoint) writer.exec("PRAGMA wal_autocheckpoint = 0");
    else if (options.journalMode === "WAL") {
      // The WalKeeper (wal.ts) checkpoints, between commits or in its worker, never inside a commit.
      writer.exec("PRAGMA wal_autocheckpoint = 0");
      this.#wal = new WalKeeper(
        options.path,
        writer,
        options.busyTimeout,
        () => writer.isTransaction,
      );
    }
    if (!options.disableStartupVacuum && worthVacuuming(writer)) {
      try {
        writer.exec("VACUUM");
      } catch (err) {
        logger.warn("startup VACUUM failed", { error: String(err) });
      }
    }
    this.#writer = new SqliteConn(writer);
    this.reader = new SqliteConn(open(options));
    this.#begin = `BEGIN ${options.txLock.toUpperCase()}`;
  }

  /** One immediate transaction, run again while another process holds the lock. */
  setup<T>(fn: (conn: SqlConn) => Promise<T>): Promise<T> {
    const db = this.#writer.db;
    const deadline = Date.now() + this.options.busyTimeout;
    const attempt = async (): Promise<T> => {
      try {
        db.exec("BEGIN IMMEDIATE");
        const result = await fn(this.#writer);
        db.exec("COMMIT");
        return result;
      } catch (err) {
        if (db.isTransaction) db.exec("ROLLBACK");
        if (!isBusy(err) || Date.now() > deadline) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50));
        return attempt();
      }
    };
    return attempt();
  }

  /**
   * One write transaction. SQLite waits for another process's lock inside
   * the call, blocking the event loop: a background one does not wait
   * (busy timeout 0 for its BEGIN), so it never holds up a client's write.
   */
  async transaction<T>(fn: (tx: SqlConn) => Promise<T>, options?: WriteOptions): Promise<T> {
    const db = this.#writer.db;
    if (options?.background) {
      db.exec("PRAGMA busy_timeout = 0");
      try {
        db.exec(this.#begin);
      } catch (err) {
        throw isBusy(err) ? new StoreBusy() : err;
      } finally {
        db.exec(`PRAGMA busy_timeout = ${this.options.busyTimeout}`);
      }
    } else db.exec(this.#begin);
    try {
      const result = await fn(this.#writer);
      db.exec("COMMIT");
      return result;
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw err;
    } finally {
      this.#wal?.afterTransaction();
    }
  }

  /**
   * Gives free pages back. A file in `auto_vacuum = INCREMENTAL` mode frees
   * them in steps of {@link DEFRAG_STEP_PAGES}, each between two write
   * transactions; any other file is switched to that mode by one VACUUM (a
   * rewrite that holds writes up for its duration), so that later calls go in
   * steps. Nothing is done when no page is free.
   */
  async defragment(exclusive: <T>(step: () => Promise<T>) => Promise<T>): Promise<void> {
    const db = this.#writer.db;
    const pragma = (name: string) => Number(Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0]);
    if (pragma("freelist_count") === 0) return;
    if (pragma("auto_vacuum") !== INCREMENTAL_VACUUM) {
      await exclusive(() => {
        db.exec("PRAGMA auto_vacuum = INCREMENTAL");
        db.exec("VACUUM");
        return Promise.resolve();
      });
      return;
    }
    while (
      await exclusive(() => {
        // Each row stepped frees one page: exec() would stop after the first few.
        db.prepare(`PRAGMA incremental_vacuum(${DEFRAG_STEP_PAGES})`).all();
        return Promise.resolve(pragma("freelist_count") > 0);
      })
    ) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  /**
   * Copies what compaction wrote to the WAL back into the database file, so the
   * WAL does not hold it until the next write (upstream's post-compaction
   * checkpoint). Where the WAL keeper runs, its worker does that within its next
   * tick, off this thread: a checkpoint here would hold up the event loop (tens
   * of ms after a large compaction). `_kine_disable_compact_wal_checkpoint`
   * (and Litestream, which must do every checkpoint itself) turns it off.
   */
  afterCompact(): void {
    if (this.#wal || this.options.disableCompactWalCheckpoint) return;
    this.reader.run("post_compact", "PRAGMA wal_checkpoint(PASSIVE)", []);
  }

  async close(): Promise<void> {
    await this.#wal?.close();
    this.reader.db.close();
    this.#writer.db.close();
  }
}

/**
 * Empties the WAL at start-up. On a full disk the checkpoint cannot write and
 * fails with "database or disk is full"; the data is readable all the same,
 * so kine starts, serves reads and refuses writes until space returns (the
 * checkpointer empties the WAL then).
 */
function startupCheckpoint(db: DatabaseSync, logger: Logger): void {
  try {
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (err) {
    if (!/database or disk is full|disk I\/O error/.test(String(err))) throw err;
    logger.warn("start-up WAL checkpoint failed; writes fail until there is space again", {
      error: String((err as Error)?.message ?? err),
    });
  }
}

/**
 * VACUUM rewrites the whole file; it pays only when much of it is free pages
 * (after compaction), so a healthy store starts without the rewrite.
 */
function worthVacuuming(db: DatabaseSync): boolean {
  const { pages, free } = db.prepare(
    "SELECT (SELECT page_count FROM pragma_page_count()) AS pages, " +
      "(SELECT freelist_count FROM pragma_freelist_count()) AS free",
  ).get() as { pages: number; free: number };
  return free > 0 && free * VACUUM_FREE_FRACTION >= pages;
}
