import type {
  CommitNotifier,
  LogStore,
  LogWriteTx,
  StoreFailure,
  WriteOptions,
} from "../logstructured/log.ts";
import type { LeaseRecord } from "../types.ts";
import {
  type Dialect,
  type KeyTxnDialect,
  type SqlConn,
  type SqlDriver,
  type SqlEngine,
  type SqlOptions,
  Statements,
} from "./dialect.ts";
import { instrument, measure } from "./instrument.ts";
import { bulkRevision, bulkStatements, keyTxnPlan } from "./key_txn.ts";
import type { BulkKnown, BulkPut, KeyTxn, KeyTxnRow } from "../logstructured/key_txn.ts";
import { BackendError } from "../errors.ts";
import { nameToWrite } from "./keys.ts";
import { appendKnownPuts, appendPuts } from "./bulk_put.ts";
import { guardFailed, knownBulkIds, knownBulkStatements } from "./bulk_known.ts";
import { Pacer } from "../logstructured/txn.ts";
import { setUpSchema } from "./schema.ts";
import { SqlLogTx, toLease } from "./tx.ts";

/** Poll interval where commits of other processes announce themselves: a fallback only. */
const NOTIFIED_POLL_MS = 1000;
/** Poll interval where nothing announces them (SQLite, MySQL): their delivery delay. */
const SHORT_POLL_MS = 50;
/**
 * The shortest poll interval where a poll is a query to a database server
 * (MySQL; PostgreSQL behind PgBouncer): each one costs the server a
 * statement, and at 1 ms under another server's load the polls of three
 * processes took more of the server than the writes. SQLite's poll reads the
 * file in-process and keeps the hub's 1 ms.
 */
const SERVER_BUSY_POLL_MS = 5;

/**
 * Connects to an engine and readies its tables: the one start-up path every
 * SQL engine shares (connect and create the database, schema, migrations).
 */
export async function openSqlStore(
  engine: SqlEngine,
  dsn: string,
  options: SqlOptions,
): Promise<SqlStore> {
  const driver = await engine.connect(dsn, options);
  try {
    await setUpSchema(driver, engine.dialect, options.tableName, options.logger);
  } catch (err) {
    await driver.close();
    throw err;
  }
  return new SqlStore(engine.dialect, driver, options);
}

/** kine's revision log in SQL tables: shared statements over a dialect and a driver. */
export class SqlStore implements LogStore {
  readonly #sql: Statements;
  readonly #wrap: (conn: SqlConn) => SqlConn;
  readonly reader: SqlLogTx;
  readonly fillRetryDelayMs: number;
  readonly pollIntervalMs: number;
  readonly busyPollIntervalMs?: number;
  readonly parallelWrites: boolean;
  readonly notifier?: CommitNotifier;
  readonly writeKeyTxns?: LogStore["writeKeyTxns"];
  readonly writeBulk?: LogStore["writeBulk"];
  readonly writeKnownBulk?: LogStore["writeKnownBulk"];

  constructor(
    readonly dialect: Dialect,
    private readonly driver: SqlDriver,
    private readonly options: SqlOptions,
  ) {
    this.#sql = new Statements(dialect, options.tableName);
    this.#wrap = (conn) =>
      instrument(conn, options, (err) => dialect.classify(err, options.tableName).code);
    this.reader = new SqlLogTx(this.#wrap(driver.reader), this.#sql);
    this.fillRetryDelayMs = dialect.fillRetryDelayMs;
    this.pollIntervalMs = driver.notifier ? NOTIFIED_POLL_MS : SHORT_POLL_MS;
    // SQLite writes through one connection; the network engines through a pool.
    this.parallelWrites = dialect.name !== "sqlite";
    if (this.parallelWrites) this.busyPollIntervalMs = SERVER_BUSY_POLL_MS;
    this.notifier = driver.notifier;
    const keyTxn = dialect.keyTxn;
    if (keyTxn && driver.pipeline) {
      this.writeKeyTxns = (txns) => this.#writeKeyTxns(keyTxn, txns);
      this.writeBulk = (loads) => this.#writeBulk(keyTxn, loads);
      this.writeKnownBulk = (loads, known) => this.#writeKnownBulk(keyTxn, loads, known);
    } else if (!driver.pipeline) {
      this.writeBulk = (loads) => this.#appendBulk(loads);
      this.writeKnownBulk = (loads, known) => this.#appendKnownBulk(loads, known);
    }
  }

  /**
   * Single-key txns as one pipelined transaction (`key_txn.ts`), where the
   * engine has the statements and the driver pipelines; see `LogStore`.
   */
  async #writeKeyTxns(d: KeyTxnDialect, txns: KeyTxn[]): Promise<(KeyTxnRow | Error)[]> {
    // Key txns run on the text engines: a name is text or an error (`keys.ts`).
    const names = txns.map((k) => nameToWrite(k.name, this.dialect));
    const fit = txns.flatMap((k, i) => {
      const name = names[i];
      return name instanceof BackendError ? [] : [{ ...k, name: name as string }];
    });
    const plan = keyTxnPlan(this.#sql, d, fit);
    const results = plan.statements.length === 0 ? [] : await measure(
      this.options,
      (err) => this.classify(err).code,
      "key_txns",
      () => this.driver.pipeline!(plan.statements),
    );
    const rows = plan.outcomes(results);
    let next = 0;
    return names.map((name) => name instanceof BackendError ? name : rows[next++]);
  }

  /** Bulk loads, each as one multi-row insert, in one pipelined transaction; see `LogStore`. */
  async #writeBulk(d: KeyTxnDialect, loads: BulkPut[][]): Promise<number[]> {
    const stored = this.#storedNames(loads);
    const each = stored.map((puts) => bulkStatements(this.#sql, d, puts));
    const results = await measure(
      this.options,
      (err) => this.classify(err).code,
      "bulk_insert",
      () => this.driver.pipeline!(each.flat()),
    );
    return each.map((statements) => bulkRevision(results.splice(0, statements.length)));
  }

  /** Bulk loads whose rows are known, in one pipelined transaction (`bulk_known.ts`). */
  async #writeKnownBulk(
    d: KeyTxnDialect,
    loads: BulkPut[][],
    known: BulkKnown,
  ): Promise<number[][] | null> {
    const stored = this.#storedNames(loads);
    const statements = knownBulkStatements(this.#sql, stored, known, d.shape === "cte");
    try {
      const results = await measure(
        this.options,
        (err) => this.classify(err).code,
        "bulk_known_insert",
        () => this.driver.pipeline!(statements),
      );
      return knownBulkIds(stored, results);
    } catch (err) {
      if (guardFailed(err)) return null;
      throw err;
    }
  }

  /** The loads with their names as the engine stores them; a name it cannot store throws. */
  #storedNames(loads: BulkPut[][]): BulkPut[][] {
    return loads.map((puts) =>
      puts.map((p) => {
        const name = nameToWrite(p.name, this.dialect);
        if (name instanceof BackendError) throw name;
        return { ...p, name: name as string };
      })
    );
  }

  /**
   * Bulk loads in one write transaction, each set-based (`bulk_put.ts`): the
   * engines without a pipelined driver, where a statement costs no round
   * trip but a put at a time still costs a statement and an await each.
   */
  #appendBulk(loads: BulkPut[][]): Promise<number[]> {
    return this.driver.transaction(async (conn) => {
      const tx = this.#wrap(conn);
      const pacer = new Pacer();
      const pace = () => pacer.pace();
      const revisions: number[] = [];
      for (const puts of loads) {
        await pace();
        revisions.push(await appendPuts(tx, this.#sql, puts, pace));
      }
      return revisions;
    });
  }

  /** Bulk loads whose rows are known, in one write transaction (`bulk_put.ts`). */
  #appendKnownBulk(loads: BulkPut[][], known: BulkKnown): Promise<number[][] | null> {
    const stored = this.#storedNames(loads);
    return this.driver.transaction(async (conn) => {
      const pacer = new Pacer();
      return await appendKnownPuts(this.#wrap(conn), this.#sql, stored, known, () => pacer.pace());
    });
  }

  write<T>(fn: (tx: LogWriteTx) => Promise<T>, options?: WriteOptions): Promise<T> {
    return this.driver.transaction(
      (conn) => fn(new SqlLogTx(this.#wrap(conn), this.#sql)),
      options,
    );
  }

  classify(err: unknown): StoreFailure {
    return this.dialect.classify(err, this.options.tableName);
  }

  async size(): Promise<number> {
    const [r] = await this.driver.reader.all("size", this.#sql.size(), []);
    return Number(r?.[0] ?? 0);
  }

  async allocatedSize(): Promise<number> {
    const [r] = await this.driver.reader.all("allocated_size", this.#sql.allocatedSize(), []);
    return Number(r?.[0] ?? 0);
  }

  async defragment(exclusive: <T>(step: () => Promise<T>) => Promise<T>): Promise<void> {
    await this.driver.defragment?.(exclusive);
  }

  afterCompact(): Promise<void> {
    this.driver.afterCompact?.();
    return Promise.resolve();
  }

  async leaseRecords(id?: number): Promise<LeaseRecord[]> {
    const one = id !== undefined;
    const rows = await this.driver.reader.all("leases", this.#sql.leases(one), one ? [id] : []);
    return rows.map(toLease);
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
