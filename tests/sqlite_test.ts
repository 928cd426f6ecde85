// SQLite storage tests: the table and its indexes (spec §3.1), the row kinds
// (§3.2), start-up bookkeeping and migrations (§3.8, §3.9) and DSN parameters
// (§1.3). The database file is inspected directly with node:sqlite next to the
// gRPC answers. Compaction is in sqlite_compact_test.ts; several processes,
// request sizes and awkward keys in sqlite_clients_test.ts.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { EndpointError } from "../lib/mod.ts";
import { b, s } from "./helpers/client.ts";
import {
  all,
  buildUpstreamDb,
  createTxn,
  dec,
  deleteTxn,
  enc,
  ERR_COMPACTED,
  ERR_FUTURE,
  header,
  kineRows,
  kvs,
  MAIN,
  OUT_OF_RANGE,
  pragma,
  put,
  query,
  readerDb,
  ROOT,
  row,
  rowById,
  rpcError,
  serve,
  snapshot,
  UNAVAILABLE,
  updateTxn,
  UPSTREAM_DDL,
  withDir,
  withServer,
} from "./helpers/sqlite.ts";

// ---------------------------------------------------------------------------
// schema and bookkeeping

Deno.test("sqlite: schema is spec §3.1 (columns, types, order, indexes) plus a version column", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    // Twice: the DDL must be idempotent on an existing file.
    for (let i = 0; i < 2; i++) await withServer(path, async () => {});

    const columns = query(path, "PRAGMA table_info(kine)").map((c) => [
      c.name,
      String(c.type).toUpperCase(),
      Number(c.pk),
    ]);
    assert.deepEqual(columns, [
      ["id", "INTEGER", 1],
      ["name", "TEXT", 0],
      ["created", "INTEGER", 0],
      ["deleted", "INTEGER", 0],
      ["create_revision", "INTEGER", 0],
      ["prev_revision", "INTEGER", 0],
      ["lease", "INTEGER", 0],
      ["value", "BLOB", 0],
      ["old_value", "BLOB", 0],
      // Ours, after upstream's: the key's version per row (upstream's rows leave it NULL).
      ["version", "INTEGER", 0],
    ]);
    const [table] = query(path, "SELECT sql FROM sqlite_master WHERE type='table' AND name='kine'");
    assert.match(String(table.sql), /id\s+INTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT/i);
    assert.equal(
      query(path, "SELECT name FROM sqlite_master WHERE type='table' AND name='sqlite_sequence'")
        .length,
      1,
      "AUTOINCREMENT keeps sqlite_sequence",
    );

    const indexes = new Map<string, { unique: number; partial: number; cols: string[] }>();
    for (const ix of query(path, "PRAGMA index_list(kine)")) {
      const name = String(ix.name);
      const cols = query(path, `PRAGMA index_info('${name}')`)
        .sort((x, y) => Number(x.seqno) - Number(y.seqno))
        .map((c) => String(c.name));
      indexes.set(name, { unique: Number(ix.unique), partial: Number(ix.partial), cols });
    }
    assert.deepEqual(Object.fromEntries([...indexes].sort(([x], [y]) => x < y ? -1 : 1)), {
      kine_id_compact_rev_key_with_prev_revision_index: {
        unique: 0,
        partial: 1,
        cols: ["id", "name", "prev_revision"],
      },
      kine_id_deleted_index: { unique: 0, partial: 0, cols: ["id", "deleted"] },
      kine_name_id_index: { unique: 0, partial: 0, cols: ["name", "id"] },
      kine_name_index: { unique: 0, partial: 0, cols: ["name"] },
      kine_name_prev_revision_uindex: { unique: 1, partial: 0, cols: ["name", "prev_revision"] },
      kine_prev_revision_index: { unique: 0, partial: 0, cols: ["prev_revision"] },
    });
    const [partial] = query(
      path,
      "SELECT sql FROM sqlite_master WHERE name = 'kine_id_compact_rev_key_with_prev_revision_index'",
    );
    const where = String(partial.sql).replace(/\s+/g, " ").replace(/^.*\bWHERE\b/i, "WHERE");
    assert.equal(where, "WHERE name != 'compact_rev_key' AND prev_revision != 0");
    // The partial index is usable by SQLite (its WHERE clause parses as intended).
    const plan = query(
      path,
      "EXPLAIN QUERY PLAN SELECT id FROM kine INDEXED BY " +
        "kine_id_compact_rev_key_with_prev_revision_index " +
        "WHERE name != 'compact_rev_key' AND prev_revision != 0 AND id <= 5",
    );
    assert.ok(plan.length > 0);
  });
});

Deno.test("sqlite: fresh store holds compact_rev_key at 1 and /registry/health at 2", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(path, async ({ client }) => {
      const r = await all(client);
      assert.equal(Number(r.header.revision), 2);
      assert.deepEqual(kvs(r), [
        { key: "/registry/health", value: '{"health":"true"}', create: 2, mod: 2, lease: 0 },
      ]);
      const health = await client.kv.range({ key: b("/registry/health") });
      assert.equal(Number(health.header.revision), 2);
      const status = await client.maintenance.status({});
      assert.ok(Number(status.dbSize) > 0, "Status reports a db size");

      // Read-only view of the file while the server runs.
      assert.deepEqual(kineRows(path), [
        row(1, "compact_rev_key", { created: 1, value: "" }),
        row(2, "/registry/health", { created: 1, value: '{"health":"true"}' }),
      ]);
      const [bookkeeping] = query(
        path,
        "SELECT typeof(value) AS t, length(value) AS n, typeof(old_value) AS o FROM kine " +
          "WHERE id = 1",
      );
      assert.deepEqual({ ...bookkeeping }, { t: "blob", n: 0, o: "null" });
    });
    // A restart adds nothing (edge case 42: no duplicate bookkeeping or health rows).
    await withServer(path, async ({ client }) => {
      assert.equal(await header(client), 2);
    });
    assert.equal(kineRows(path).length, 2);
  });
});

Deno.test("sqlite: rows of create, update, delete and re-create match spec §3.2", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(path, async ({ client }) => {
      const grant = await client.lease.leaseGrant({ TTL: 600 });
      const lease = Number(grant.ID);
      assert.ok(lease > 0);

      // create, with a lease (kube create txn)
      const c = await client.kv.txn(createTxn("/reg/pod", "v1", lease));
      assert.equal(c.succeeded, true);
      const created = Number(c.header.revision);
      assert.equal(created, 3);
      assert.deepEqual(
        rowById(path, created),
        row(created, "/reg/pod", { created: 1, lease, value: "v1" }),
      );

      // update through a txn: lease dropped, create_revision kept
      const u = await client.kv.txn(updateTxn("/reg/pod", created, "v2"));
      assert.equal(u.succeeded, true);
      const updated = Number(u.header.revision);
      assert.deepEqual(
        rowById(path, updated),
        row(updated, "/reg/pod", {
          create_revision: created,
          prev_revision: created,
          value: "v2",
          old_value: "v1",
        }),
      );

      // a second update (plain Put) still points at the original create
      const updated2 = await put(client, "/reg/pod", "v3", lease);
      assert.deepEqual(
        rowById(path, updated2),
        row(updated2, "/reg/pod", {
          create_revision: created,
          prev_revision: updated,
          lease,
          value: "v3",
          old_value: "v2",
        }),
      );

      // a failed compare writes nothing
      const stale = await client.kv.txn(updateTxn("/reg/pod", created, "nope"));
      assert.equal(stale.succeeded, false);
      assert.equal(Number(stale.header.revision), updated2);
      assert.equal(kineRows(path).length, 5);

      // delete (DeleteRange): value NULL, old_value = deleted value, lease 0
      const d = await client.kv.deleteRange({ key: b("/reg/pod"), prev_kv: true });
      assert.equal(Number(d.deleted), 1);
      const deleted = Number(d.header.revision);
      assert.equal(s(d.prev_kvs[0].value), "v3");
      assert.deepEqual(
        rowById(path, deleted),
        row(deleted, "/reg/pod", { deleted: 1, prev_revision: updated2, old_value: "v3" }),
      );

      // re-create after delete: a create row chained to the tombstone, old_value NULL
      const rc = await client.kv.txn(createTxn("/reg/pod", "v4"));
      assert.equal(rc.succeeded, true);
      const recreated = Number(rc.header.revision);
      assert.deepEqual(
        rowById(path, recreated),
        row(recreated, "/reg/pod", { created: 1, prev_revision: deleted, value: "v4" }),
      );
      const got = kvs(await client.kv.range({ key: b("/reg/pod") }));
      assert.deepEqual(got, [{
        key: "/reg/pod",
        value: "v4",
        create: recreated,
        mod: recreated,
        lease: 0,
      }]);

      // kube delete txn: tombstone again, then the old revision compares stale
      const kd = await client.kv.txn(deleteTxn("/reg/pod", recreated));
      assert.equal(kd.succeeded, true);
      const deleted2 = Number(kd.header.revision);
      assert.deepEqual(
        rowById(path, deleted2),
        row(deleted2, "/reg/pod", { deleted: 1, prev_revision: recreated, old_value: "v4" }),
      );
      assert.deepEqual(
        kineRows(path).map((r) => r.id),
        [1, 2, created, updated, updated2, deleted, recreated, deleted2],
        "every mutation is exactly one row, revisions consecutive",
      );
    });
  });
});

// ---------------------------------------------------------------------------
// existing databases

Deno.test("sqlite: drop-in on a database written by upstream kine", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const H = '{"health":"true"}';
    // History 3..13 after an upstream compaction at 6 (row 3 = /a's create is gone).
    const rows = [
      row(1, "compact_rev_key", { created: 1, prev_revision: 6, value: "" }),
      row(2, "/registry/health", { created: 1, value: H }),
      row(4, "/b", { created: 1, value: "b1" }),
      row(5, "/a", { create_revision: 3, prev_revision: 3, value: "a2", old_value: "a1" }),
      row(6, "/c", { created: 1, value: "c1" }),
      row(7, "/c", { deleted: 1, prev_revision: 6, old_value: "c1" }),
      row(8, "gap-8", { deleted: 1 }),
      row(9, "/b", { create_revision: 4, prev_revision: 4, value: "b2", old_value: "b1" }),
      row(10, "/d", { created: 1, lease: 30, value: "d1" }),
      row(11, "/a", { deleted: 1, prev_revision: 5, old_value: "a2" }),
      row(12, "/a", { created: 1, prev_revision: 11, value: "a3" }),
      row(13, "compact_rev_key_apiserver", { created: 1, value: "1|0" }),
    ];
    buildUpstreamDb(path, rows);

    await withServer(path, async ({ client }) => {
      // Start-up added nothing and changed nothing.
      assert.deepEqual(kineRows(path), rows);

      const latest = await all(client);
      assert.equal(Number(latest.header.revision), 13, "header revision = MAX(id)");
      assert.deepEqual(kvs(latest).map((kv) => [kv.key, kv.value, kv.create, kv.mod, kv.lease]), [
        ["/a", "a3", 12, 12, 0],
        ["/b", "b2", 4, 9, 0],
        ["/d", "d1", 10, 10, 30],
        ["/registry/health", H, 2, 2, 0],
        ["compact_rev_key", "0", 13, 13, 0],
      ]);
      assert.equal(Number(latest.count), 5);
      const ck = await client.kv.range({ key: b("compact_rev_key") });
      assert.equal(Number(ck.kvs[0].version), 1);
      assert.equal(s(ck.kvs[0].value), "0");
      const counted = await client.kv.range({ key: b("\0"), range_end: b("\0"), count_only: true });
      assert.equal(Number(counted.count), 5);
      assert.equal((await client.kv.range({ key: b("gap-8") })).kvs.length, 0);
      assert.equal(
        (await client.kv.range({ key: b("gap-"), range_end: b("gap."), revision: 8 })).kvs.length,
        0,
      );

      // Reads at the stored compact revision work, below it they are compacted.
      assert.deepEqual(await snapshot(client, 6), {
        "/a": "a2",
        "/b": "b1",
        "/c": "c1",
        "/registry/health": H,
      });
      const at6 = kvs(await client.kv.range({ key: b("/a"), revision: 6 }));
      assert.deepEqual(at6, [{ key: "/a", value: "a2", create: 3, mod: 5, lease: 0 }]);
      assert.deepEqual(await snapshot(client, 8), {
        "/a": "a2",
        "/b": "b1",
        "/registry/health": H,
      });
      assert.deepEqual(await snapshot(client, 11), {
        "/b": "b2",
        "/d": "d1",
        "/registry/health": H,
      });
      for (const revision of [5, 1]) {
        const e = await rpcError(client.kv.range({ key: b("/a"), revision }));
        assert.deepEqual(e, { code: OUT_OF_RANGE, details: ERR_COMPACTED });
      }
      assert.deepEqual(await rpcError(client.kv.range({ key: b("/a"), revision: 14 })), {
        code: OUT_OF_RANGE,
        details: ERR_FUTURE,
      });
      assert.deepEqual(await rpcError(client.kv.compact({ revision: 6 })), {
        code: OUT_OF_RANGE,
        details: ERR_COMPACTED,
      });

      // The next write gets MAX(id)+1; updates and re-creates chain to the old rows.
      assert.equal(await put(client, "/e", "e1"), 14);
      assert.deepEqual(rowById(path, 14), row(14, "/e", { created: 1, value: "e1" }));
      const u = await client.kv.txn(updateTxn("/b", 9, "b3"));
      assert.equal(u.succeeded, true);
      assert.equal(Number(u.header.revision), 15);
      // Upstream's rows have no stored version: /b's is counted (rows 4 and 9), ours stores 3.
      const b3 = await client.kv.range({ key: b("/b") });
      assert.equal(Number(b3.kvs[0].version), 3);
      const stored = query(path, "SELECT id, version FROM kine WHERE name = '/b' ORDER BY id");
      assert.deepEqual(stored.map((r) => [r.id, r.version]), [[4, null], [9, null], [15, 3]]);
      assert.deepEqual(
        rowById(path, 15),
        row(15, "/b", { create_revision: 4, prev_revision: 9, value: "b3", old_value: "b2" }),
      );
      const rc = await client.kv.txn(createTxn("/c", "c2"));
      assert.equal(rc.succeeded, true);
      assert.deepEqual(
        rowById(path, 16),
        row(16, "/c", { created: 1, prev_revision: 7, value: "c2" }),
      );
    });
  });
});

Deno.test("sqlite: start-up keeps one compact_rev_key row, the largest prev_revision", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const H = '{"health":"true"}';
    // Legacy kine appended a compact_rev_key row per compaction.
    buildUpstreamDb(path, [
      row(1, "compact_rev_key", { created: 1, value: "" }),
      row(2, "/registry/health", { created: 1, value: H }),
      row(4, "/y", { created: 1, value: "y1" }),
      row(5, "compact_rev_key", { prev_revision: 3, value: "" }),
      row(6, "/x", { create_revision: 3, prev_revision: 3, value: "x2", old_value: "x1" }),
      row(7, "/z", { created: 1, value: "z1" }),
      row(8, "compact_rev_key", { prev_revision: 7, value: "" }),
      row(9, "/y", { create_revision: 4, prev_revision: 4, value: "y2", old_value: "y1" }),
      row(10, "compact_rev_key", { prev_revision: 6, value: "" }),
      row(11, "/w", { created: 1, value: "w1" }),
    ]);
    await withServer(path, async ({ client }) => {
      const keep = kineRows(path, "WHERE name = 'compact_rev_key'");
      assert.deepEqual(keep.map((r) => [r.id, r.prev_revision]), [[8, 7]]);
      assert.equal(await header(client), 11);
      assert.deepEqual(await snapshot(client, 7), {
        "/registry/health": H,
        "/x": "x2",
        "/y": "y1",
        "/z": "z1",
      });
      assert.deepEqual(await rpcError(client.kv.range({ key: b("/x"), revision: 6 })), {
        code: OUT_OF_RANGE,
        details: ERR_COMPACTED,
      });
      assert.deepEqual(Object.keys(await snapshot(client)), [
        "/registry/health",
        "/w",
        "/x",
        "/y",
        "/z",
      ]);
      assert.equal(await put(client, "/v", "v1"), 12);
    });
    // Idempotent: a second start finds one row and leaves it.
    await withServer(path, async () => {});
    assert.deepEqual(
      kineRows(path, "WHERE name = 'compact_rev_key'").map((r) => [r.id, r.prev_revision]),
      [[8, 7]],
    );
  });
});

Deno.test("sqlite: a legacy key_value table migrates into an empty kine table", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const db = new DatabaseSync(path);
    try {
      db.exec(
        "CREATE TABLE key_value (name TEXT, value BLOB, create_revision INTEGER, " +
          "revision INTEGER, ttl INTEGER, version INTEGER, del INTEGER, old_value BLOB, " +
          "id INTEGER PRIMARY KEY AUTOINCREMENT, old_revision INTEGER)",
      );
      const ins = db.prepare(
        "INSERT INTO key_value (id, name, value, create_revision, revision, ttl, version, del) " +
          "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
      );
      ins.run(1, "/registry/a", enc.encode("a1"), 1, 1, 0, 1);
      ins.run(2, "/registry/b", enc.encode("b1"), 2, 2, 0, 1);
      ins.run(3, "/registry/a", enc.encode("a2"), 1, 3, 0, 2);
      ins.run(4, "/registry/lease", enc.encode("l1"), 4, 4, 60, 1);
      ins.run(5, "/registry/b", enc.encode("b2"), 2, 5, 0, 2);
      ins.run(6, "/registry/a", enc.encode("a3"), 1, 6, 0, 3);
    } finally {
      db.close();
    }

    await withServer(path, async ({ client }) => {
      const migrated = kineRows(path).filter((r) =>
        r.name.startsWith("/registry/") &&
        r.name !== "/registry/health"
      );
      assert.deepEqual(
        migrated.map((r) => ({ ...r, id: 0 })).sort((x, y) => x.name < y.name ? -1 : 1),
        [
          row(0, "/registry/a", { created: 1, value: "a3" }),
          row(0, "/registry/b", { created: 1, value: "b2" }),
          row(0, "/registry/lease", { created: 1, lease: 15, value: "l1" }),
        ],
      );
      assert.deepEqual(migrated.map((r) => r.id).sort(), [1, 2, 3]);
      assert.equal(kineRows(path, "WHERE name = 'compact_rev_key'").length, 1);
      assert.equal(kineRows(path, "WHERE name = '/registry/health'").length, 1);
      assert.equal(await header(client), 5);
      const got = kvs(await all(client)).map((kv) => [kv.key, kv.value, kv.lease]);
      assert.deepEqual(got, [
        ["/registry/a", "a3", 0],
        ["/registry/b", "b2", 0],
        ["/registry/health", '{"health":"true"}', 0],
        ["/registry/lease", "l1", 15],
      ]);
    });
    // kine is no longer empty: a restart must not copy the rows again.
    const before = kineRows(path);
    await withServer(path, async () => {});
    assert.deepEqual(kineRows(path), before);
  });
});

// ---------------------------------------------------------------------------
// DSN parameters

Deno.test("sqlite: _journal_mode, _synchronous and _busy_timeout take effect", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const walFile = `${path}-wal`;
    const exists = (p: string) => {
      try {
        Deno.statSync(p);
        return true;
      } catch {
        return false;
      }
    };
    const fileFormat = () => Array.from(Deno.readFileSync(path).subarray(18, 20));

    // Default DSN: WAL (persistent in the file header), NORMAL, 30 s.
    await withServer(path, async ({ kine, client }) => {
      await put(client, "/j", "1");
      assert.equal(query(path, "PRAGMA journal_mode")[0].journal_mode, "wal");
      assert.ok(exists(walFile), "a -wal file exists while kine runs in WAL mode");
      assert.deepEqual(fileFormat(), [2, 2]);
      const db = readerDb(kine);
      assert.equal(Number(pragma(db, "synchronous")), 1);
      assert.equal(Number(pragma(db, "busy_timeout")), 30000);
    });

    await withServer(path, async ({ kine, client }) => {
      await put(client, "/j", "2");
      assert.equal(query(path, "PRAGMA journal_mode")[0].journal_mode, "delete");
      assert.ok(!exists(walFile), "no -wal file in rollback-journal mode");
      assert.deepEqual(fileFormat(), [1, 1]);
      const db = readerDb(kine);
      assert.equal(pragma(db, "journal_mode"), "delete");
      assert.equal(Number(pragma(db, "synchronous")), 2);
      assert.equal(Number(pragma(db, "busy_timeout")), 1234);
    }, "_journal_mode=DELETE&_synchronous=FULL&_busy_timeout=1234");

    // go-sqlite3's short aliases.
    await withServer(path, async ({ kine, client }) => {
      await put(client, "/j", "3");
      const db = readerDb(kine);
      assert.equal(pragma(db, "journal_mode"), "truncate");
      assert.equal(Number(pragma(db, "synchronous")), 0);
      assert.equal(Number(pragma(db, "busy_timeout")), 777);
    }, "_journal=TRUNCATE&_sync=OFF&_timeout=777");
    assert.deepEqual(kineRows(path, "WHERE name = '/j'").map((r) => r.value), ["1", "2", "3"]);
  });
});

// Role renewals and lease expiry never wait for the lock ahead of the client's
// put (they fail at once and try again), so the put waits its own timeout only
// (this loop ran 20 times in a row, 40 locks, without a failure).
Deno.test("sqlite: _busy_timeout bounds the wait for a database locked by someone else", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    for (const timeout of [250, 1000]) {
      await withServer(path, async ({ client }) => {
        await put(client, "/busy", "before");
        const locker = new DatabaseSync(path);
        let elapsed: number;
        let e: { code: number; details: string };
        try {
          locker.exec("BEGIN EXCLUSIVE");
          const t0 = performance.now();
          e = await rpcError(put(client, "/busy", "locked"));
          elapsed = performance.now() - t0;
          locker.exec("ROLLBACK");
        } finally {
          locker.close();
        }
        assert.equal(e.code, UNAVAILABLE);
        assert.match(e.details, /locked|busy/i);
        assert.ok(elapsed >= timeout * 0.9, `gave up after ${elapsed} ms, timeout ${timeout} ms`);
        assert.ok(elapsed < timeout + 2000, `waited ${elapsed} ms, timeout ${timeout} ms`);
        // Once the lock is gone the same server writes again.
        const rev = await put(client, "/busy", "after");
        assert.equal(s((await client.kv.range({ key: b("/busy") })).kvs[0].value), "after");
        assert.equal(rowById(path, rev).value, "after");
      }, `_busy_timeout=${timeout}`);
    }
  });
});

Deno.test("sqlite: start-up VACUUM empties the freelist unless _kine_disable_startup_vacuum", async () => {
  await withDir(async (dir) => {
    const bloated = `${dir}/bloated.db`;
    const db = new DatabaseSync(bloated);
    try {
      for (const stmt of UPSTREAM_DDL) db.exec(stmt);
      const ins = db.prepare(
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value) " +
          "VALUES (?, 1, 0, 0, 0, 0, ?)",
      );
      const value = new Uint8Array(3000).fill(0x61);
      db.exec("BEGIN");
      for (let i = 0; i < 2000; i++) ins.run(`/bloat/${i}`, value);
      db.exec("COMMIT");
      db.exec("DELETE FROM kine");
    } finally {
      db.close();
    }
    const freelist = (p: string) => Number(query(p, "PRAGMA freelist_count")[0].freelist_count);
    const pages = (p: string) => Number(query(p, "PRAGMA page_count")[0].page_count);
    const before = freelist(bloated);
    assert.ok(before > 1000, `the test database is bloated (${before} free pages)`);
    const kept = `${dir}/kept.db`;
    const vacuumed = `${dir}/vacuumed.db`;
    Deno.copyFileSync(bloated, kept);
    Deno.copyFileSync(bloated, vacuumed);

    await withServer(kept, async ({ client }) => {
      assert.equal(await header(client), 2002);
    }, "_kine_disable_startup_vacuum");
    assert.ok(
      freelist(kept) >= before * 0.9,
      `freelist kept: ${freelist(kept)} of ${before} pages`,
    );

    await withServer(vacuumed, async ({ client }) => {
      assert.equal(await header(client), 2002);
    });
    assert.ok(freelist(vacuumed) <= 2, `freelist after VACUUM: ${freelist(vacuumed)}`);
    assert.ok(pages(vacuumed) < pages(kept) / 4, "VACUUM shrank the file");
  });
});

Deno.test("sqlite: a bad _txlock is a clear start-up error", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await assert.rejects(
      () => serve(path, "_txlock=sometimes"),
      (err: Error) => {
        assert.ok(err instanceof EndpointError, `an EndpointError, got ${err}`);
        assert.match(err.message, /_txlock/);
        assert.match(err.message, /sometimes/);
        return true;
      },
    );
    // The daemon reports it and exits with the configuration status (2).
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        "--config",
        `${ROOT}deno.json`,
        MAIN,
        "--endpoint",
        `sqlite://${path}?_txlock=sometimes`,
        "--listen-address",
        "127.0.0.1:0",
        "--metrics-bind-address",
        "0",
      ],
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = dec.decode(out.stderr);
    assert.equal(out.code, 2, stderr);
    assert.match(stderr, /failed to start kine: .*_txlock.*sometimes/);

    // The valid lock modes all serve writes.
    for (const mode of ["immediate", "deferred", "exclusive"]) {
      await withServer(path, async ({ client }) => {
        const rev = await put(client, `/lock/${mode}`, mode);
        assert.equal(rowById(path, rev).name, `/lock/${mode}`);
      }, `_txlock=${mode}`);
    }
  });
});
