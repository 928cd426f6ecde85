/**
 * A snapshot of any backend as a SQLite database file in kine's schema: every
 * row of the log with its revision, the compact revision, and the leases.
 * `kine --endpoint sqlite://<file>` serves the file as it is, so a snapshot is
 * both a backup and a way from one engine to SQLite.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { DatabaseSync, type SQLInputValue } from "node:sqlite";
import { recordParams } from "./import.ts";
import type { LeaseStore, Maintenance } from "../types.ts";
import { sqliteDialect } from "./sqlite.ts";
import { COMPACT_KEY } from "../logstructured/compact_key.ts";

const INSERT_ROW = "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, " +
  "lease, value, old_value, version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
const INSERT_LEASE = "INSERT INTO kine_lease(id, ttl, expires_at) VALUES(?, ?, ?)";

/** Writes `backend`'s snapshot to a new SQLite file at `path`; returns the revision it holds. */
export async function writeSqliteSnapshot(
  backend: Maintenance & LeaseStore,
  path: string,
): Promise<number> {
  const db = new DatabaseSync(path);
  try {
    // A file written once and read back: no journal to keep, nothing to sync until the end.
    db.exec("PRAGMA journal_mode = OFF");
    db.exec("PRAGMA synchronous = OFF");
    for (const stmt of sqliteDialect.schema) db.exec(stmt);
    for (const m of sqliteDialect.migrations) {
      const [needed] = Object.values(db.prepare(m.needed).get()!);
      if (needed) db.exec(m.apply);
    }
    const insert = db.prepare(INSERT_ROW);
    let last = 0;
    let compactRow = false;
    for await (const rows of backend.snapshot()) {
      db.exec("BEGIN");
      for (const r of rows) {
        insert.run(...(recordParams(r, sqliteDialect) as SQLInputValue[]));
        last = r.id;
        compactRow ||= r.name === COMPACT_KEY;
      }
      db.exec("COMMIT");
      // node:sqlite is synchronous: let other requests in between pages.
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (!compactRow) {
      // A log that keeps its compact revision elsewhere (NATS): the row kine expects, under
      // id 0 so that it adds no revision and no event.
      const { compactRevision } = await backend.status();
      insert.run(0, COMPACT_KEY, 1, 0, 0, compactRevision, 0, new Uint8Array(0), null, 0);
    }
    const lease = db.prepare(INSERT_LEASE);
    for (const l of await backend.leaseRecords()) lease.run(l.id, l.ttl, l.expiresAt);
    return last;
  } finally {
    db.close();
  }
}
