/**
 * Rows written with their ids into a SQL log (kine migrate's target):
 * multi-row INSERTs with explicit ids (PostgreSQL: one binary COPY, see
 * `pg_copy.ts`), one transaction per batch, and the
 * engine's id sequence moved past them at the end (PostgreSQL; SQLite's
 * AUTOINCREMENT and MySQL's AUTO_INCREMENT follow explicit ids themselves).
 *
 * @module
 */
import type { Importer, ImportState } from "../import.ts";
import { COMPACT_KEY } from "../logstructured/compact_key.ts";
import type { LeaseRecord, LogRecord } from "../types.ts";
import {
  bind,
  type Dialect,
  renameTable,
  type SqlDriver,
  type SqlEngine,
  type SqlOptions,
  type SqlParam,
} from "./dialect.ts";
import { COPY_COLUMNS, copyStream } from "./pg_copy.ts";
import { nameToWrite } from "./keys.ts";
import { BackendError } from "../errors.ts";
import { setUpSchema } from "./schema.ts";

/** Rows per INSERT statement: 10 parameters each, well inside every engine's limits. */
const ROWS_PER_STATEMENT = 200;

/** Which copy is under way in this database: kine-for-Deno's own table, kine ignores it. */
const MARKER_TABLE = "CREATE TABLE IF NOT EXISTS kine_migrate (name VARCHAR(64) PRIMARY KEY, " +
  "source VARCHAR(1024) NOT NULL)";

/** Connects, readies kine's tables (and the marker's) and returns the importer. */
export async function openSqlImporter(
  engine: SqlEngine,
  dsn: string,
  options: SqlOptions,
): Promise<Importer> {
  const driver = await engine.connect(dsn, options);
  try {
    await setUpSchema(driver, engine.dialect, options.tableName, options.logger);
    const importer = new SqlImporter(engine.dialect, driver, options.tableName);
    await driver.setup(async (conn) => {
      await conn.run("schema", importer.sql(MARKER_TABLE), []);
    });
    return importer;
  } catch (err) {
    await driver.close();
    throw err;
  }
}

/**
 * A log row's values in the order of `INSERT INTO kine(id, name, …, version)`;
 * throws the `InvalidArgument` error of a key `dialect` cannot store.
 */
export function recordParams(r: LogRecord, dialect: Dialect): SqlParam[] {
  return [
    r.id,
    writableName(r.name, dialect),
    r.created ? 1 : 0,
    r.deleted ? 1 : 0,
    r.createRevision,
    r.prevRevision,
    r.lease,
    r.value,
    r.oldValue,
    r.version,
  ];
}

/** The name `key` is stored under; throws the `InvalidArgument` error of a key `dialect` cannot store. */
function writableName(key: string, dialect: Dialect): string | Uint8Array {
  const name = nameToWrite(key, dialect);
  if (name instanceof BackendError) throw name;
  return name;
}

class SqlImporter implements Importer {
  constructor(
    private readonly dialect: Dialect,
    private readonly driver: SqlDriver,
    private readonly table: string,
  ) {}

  /** A statement with `?` placeholders and upstream's table names, as this database needs it. */
  sql(statement: string): string {
    return renameTable(bind(this.dialect, statement), this.table);
  }

  async state(): Promise<ImportState> {
    const reader = this.driver.reader;
    const [[rows, head]] = await reader.all(
      "migrate",
      this.sql("SELECT COUNT(*), MAX(id) FROM kine WHERE id > 0"),
      [],
    );
    const marked = await reader.all(
      "migrate",
      this.sql("SELECT source FROM kine_migrate WHERE name = 'copy'"),
      [],
    );
    return {
      rows: Number(rows ?? 0),
      head: Number(head ?? 0),
      marker: marked.length > 0 ? String(marked[0][0]) : null,
    };
  }

  async setMarker(marker: string | null): Promise<void> {
    await this.driver.transaction(async (conn) => {
      await conn.run("migrate", this.sql("DELETE FROM kine_migrate WHERE name = 'copy'"), []);
      if (marker !== null) {
        await conn.run(
          "migrate",
          this.sql("INSERT INTO kine_migrate(name, source) VALUES('copy', ?)"),
          [marker],
        );
      }
    });
  }

  keyError(key: string): string | undefined {
    const name = nameToWrite(key, this.dialect);
    return name instanceof BackendError ? name.message : undefined;
  }

  async importRows(rows: LogRecord[]): Promise<void> {
    if (rows.length === 0) return;
    await this.driver.transaction(async (conn) => {
      if (conn.copyIn) {
        const copy = `COPY kine(${COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)`;
        // COPY takes the stored name as text: a PostgreSQL key is always text (`keys.ts`).
        const stored = rows.map((r) => ({
          ...r,
          name: writableName(r.name, this.dialect) as string,
        }));
        return await conn.copyIn(this.sql(copy), copyStream(stored));
      }
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const chunk = rows.slice(i, i + ROWS_PER_STATEMENT);
        const params = chunk.flatMap((r) => recordParams(r, this.dialect));
        await conn.run("migrate_insert", this.#insert(chunk.length), params);
      }
    });
  }

  #insert(n: number): string {
    const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    return this.sql(`INSERT INTO kine(${COPY_COLUMNS}) VALUES ${Array(n).fill(row).join(", ")}`);
  }

  async importLeases(leases: LeaseRecord[]): Promise<void> {
    if (leases.length === 0) return;
    const upsert = this.sql(this.dialect.leaseUpsertSql);
    await this.driver.transaction(async (conn) => {
      for (const l of leases) await conn.run("migrate", upsert, [l.id, l.ttl, l.expiresAt]);
    });
  }

  async finish(compactRevision: number): Promise<void> {
    await this.driver.transaction(async (conn) => {
      const moved = await conn.run(
        "migrate",
        this.sql(
          "UPDATE kine SET prev_revision = ? WHERE name = 'compact_rev_key' AND prev_revision < ?",
        ),
        [compactRevision, compactRevision],
      );
      const [[present]] = await conn.all(
        "migrate",
        this.sql("SELECT COUNT(*) FROM kine WHERE name = 'compact_rev_key'"),
        [],
      );
      if (moved.changes === 0 && Number(present) === 0) {
        // A log that kept its compact revision elsewhere (NATS): the row kine expects, under
        // id 0 so that it adds no revision and no event (as a snapshot file holds it).
        if (this.dialect.name === "mysql") {
          // MySQL would take an explicit 0 as "the next id".
          await conn.run(
            "migrate",
            "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
            [],
          );
        }
        await conn.run("migrate_insert", this.#insert(1), [
          0,
          COMPACT_KEY,
          1,
          0,
          0,
          compactRevision,
          0,
          new Uint8Array(0),
          null,
          0,
        ]);
      }
      if (this.dialect.name === "postgres") {
        // Explicit ids leave the BIGSERIAL's sequence behind: kine's next insert takes head + 1.
        await conn.all(
          "migrate",
          this.sql(
            "SELECT setval(pg_get_serial_sequence('kine', 'id'), " +
              "GREATEST((SELECT MAX(id) FROM kine), 1))",
          ),
          [],
        );
      }
    });
  }

  close(): Promise<void> {
    return this.driver.close();
  }
}
