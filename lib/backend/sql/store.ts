import type { LogStore, LogWriteTx } from "../logstructured/log.ts";
import type { LeaseRecord } from "../types.ts";
import { type Dialect, type SqlDriver, Statements } from "./dialect.ts";
import { SqlLogTx } from "./tx.ts";

/** kine's revision log in SQL tables: shared statements over a dialect and a driver. */
export class SqlStore implements LogStore {
  readonly #sql: Statements;
  readonly reader: SqlLogTx;
  readonly fillRetryDelayMs: number;

  constructor(readonly dialect: Dialect, private readonly driver: SqlDriver) {
    this.#sql = new Statements(dialect);
    this.reader = this.#tx(driver.reader);
    this.fillRetryDelayMs = dialect.fillRetryDelayMs;
  }

  #tx(conn: SqlDriver["reader"]): SqlLogTx {
    return new SqlLogTx(conn, this.#sql, (k) => this.dialect.startKey(k));
  }

  write<T>(fn: (tx: LogWriteTx) => Promise<T>): Promise<T> {
    return this.driver.transaction((conn) => fn(this.#tx(conn)));
  }

  isConflict(err: unknown): boolean {
    return this.dialect.isUniqueViolation(err);
  }

  async size(): Promise<number> {
    const [r] = await this.driver.reader.all("size", this.#sql.size(), []);
    return Number(r?.[0] ?? 0);
  }

  async afterCompact(): Promise<void> {
    if (this.dialect.postCompactSql) {
      await this.driver.reader.run("post_compact", this.dialect.postCompactSql, []);
    }
  }

  async leaseRecords(): Promise<LeaseRecord[]> {
    const rows = await this.driver.reader.all("leases", this.#sql.leases(), []);
    return rows.map((r) => ({ id: Number(r[0]), ttl: Number(r[1]), expiresAt: Number(r[2]) }));
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
