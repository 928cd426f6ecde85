import type { Logger } from "../../log/mod.ts";
import { type Dialect, renameTable, type SqlConn, type SqlDriver } from "./dialect.ts";

/**
 * Creates upstream kine's tables and indexes where missing, makes the
 * dialect's changes to them (the `version` column kine-for-Deno keeps), and copies a pre-2019 `key_value`
 * table into an empty log. Safe to run on every start, by several processes
 * at once.
 */
export async function setUpSchema(
  driver: SqlDriver,
  dialect: Dialect,
  table: string,
  logger: Logger,
): Promise<void> {
  const sql = (s: string) => renameTable(s, table);
  await driver.setup(async (conn) => {
    for (const statement of [...dialect.schema, ROLE_TABLE]) {
      await tolerate(dialect, () => conn.run("schema", sql(statement), []));
    }
    for (const { needed, apply } of dialect.migrations) {
      const [[yes]] = await conn.all("schema", sql(needed), []);
      if (yes && Number(yes) !== 0) {
        await tolerate(dialect, () => conn.run("schema", sql(apply), []));
      }
    }
  });
  await driver.setup((conn) => migrateKeyValue(conn, sql, logger));
}

/**
 * Who holds each role that one process at a time performs (the lease reaper,
 * the compactor) and until when; kine-for-Deno's own, upstream ignores it.
 */
const ROLE_TABLE = "CREATE TABLE IF NOT EXISTS kine_role (name VARCHAR(64) PRIMARY KEY, " +
  "holder VARCHAR(128) NOT NULL, expires_at BIGINT NOT NULL)";

/** Runs a DDL statement, treating "already there" as done (another process got there first). */
async function tolerate(dialect: Dialect, step: () => unknown): Promise<void> {
  try {
    await step();
  } catch (err) {
    if (!dialect.isAlreadyThere(err)) throw err;
  }
}

/** Copies the newest row per key from a pre-2019 `key_value` table into an empty `kine`. */
async function migrateKeyValue(
  conn: SqlConn,
  sql: (s: string) => string,
  logger: Logger,
): Promise<void> {
  let legacy: number;
  try {
    [[legacy]] = (await conn.all("schema", "SELECT COUNT(*) FROM key_value", [])) as [[number]];
  } catch {
    return; // no legacy table
  }
  const [[rows]] = await conn.all("schema", sql("SELECT COUNT(*) FROM kine"), []);
  if (Number(legacy) === 0 || Number(rows) !== 0) return;
  try {
    await conn.run(
      "schema",
      sql(
        "INSERT INTO kine(deleted, create_revision, prev_revision, name, value, created, lease) " +
          "SELECT 0, 0, 0, kv.name, kv.value, 1, CASE WHEN kv.ttl > 0 THEN 15 ELSE 0 END " +
          "FROM key_value kv WHERE kv.id IN " +
          "(SELECT MAX(kvd.id) FROM key_value kvd GROUP BY kvd.name)",
      ),
      [],
    );
    logger.info("migrated legacy key_value table", { rows: Number(legacy) });
  } catch (err) {
    logger.error("legacy key_value migration failed", { error: String(err) });
  }
}
