/**
 * The SQLite WAL keeper starts its checkpoint worker (a whole V8 isolate) only for a write load:
 * an idle store's WAL is emptied on the writer's thread, and a WAL that fills quickly goes to
 * the worker. Driven with a clock of the test's own, so nothing here waits for time to pass.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { WalKeeper } from "../lib/backend/sql/wal.ts";

const MiB = 1024 * 1024;

/** A WAL-mode database without SQLite's own checkpoints, as the SQLite driver opens it. */
async function withStore(
  fn: (path: string, db: DatabaseSync, clock: { now: number }) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kine-walkeeper-" });
  const path = `${dir}/state.db`;
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA wal_autocheckpoint = 0");
    db.exec("CREATE TABLE t (v BLOB)");
    await fn(path, db, { now: 0 });
  } finally {
    db.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Commits `bytes` of rows, 16 KiB per transaction, telling the keeper after each. */
function write(db: DatabaseSync, keeper: WalKeeper, bytes: number): void {
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  for (let done = 0; done < bytes; done += 16 * 1024) {
    db.exec("BEGIN IMMEDIATE");
    insert.run(new Uint8Array(16 * 1024));
    db.exec("COMMIT");
    keeper.afterTransaction();
  }
}

const walBytes = (path: string) => Deno.statSync(`${path}-wal`).size;

Deno.test("wal keeper: no worker while the WAL stays small", async () => {
  await withStore(async (path, db, clock) => {
    const keeper = new WalKeeper(path, db, 5000, () => db.isTransaction, () => clock.now);
    write(db, keeper, 256 * 1024);
    assert.ok(walBytes(path) > 256 * 1024, "the writes went to the WAL");
    assert.equal(keeper.workerStarted, false);
    await keeper.close();
  });
});

Deno.test("wal keeper: a WAL that fills slowly is emptied on the writer's thread", async () => {
  await withStore(async (path, db, clock) => {
    const keeper = new WalKeeper(path, db, 5000, () => db.isTransaction, () => clock.now);
    write(db, keeper, 512 * 1024);
    clock.now += 61_000;
    write(db, keeper, 768 * 1024);
    assert.equal(keeper.workerStarted, false);
    assert.ok(walBytes(path) < MiB, `WAL of ${walBytes(path)} bytes after it reached 1 MiB`);
    // Every row is in the database file: the WAL was copied back, not lost.
    assert.equal((db.prepare("SELECT count(*) AS n FROM t").get() as { n: number }).n, 80);
    await keeper.close();
  });
});

Deno.test("wal keeper: a WAL that fills within a minute starts the worker", async () => {
  await withStore(async (path, db, clock) => {
    const keeper = new WalKeeper(path, db, 5000, () => db.isTransaction, () => clock.now);
    clock.now += 30_000;
    write(db, keeper, 1.5 * MiB);
    assert.equal(keeper.workerStarted, true);
    await keeper.close();
  });
});
