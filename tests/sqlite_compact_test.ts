// SQLite compaction (spec §3.7, edge cases 22–24), checked on the database file
// next to the gRPC answers.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createLogger } from "../lib/log/mod.ts";
import { b } from "./helpers/client.ts";
import {
  dec,
  ERR_COMPACTED,
  ERR_FUTURE,
  header,
  kineRows,
  kvs,
  OUT_OF_RANGE,
  put,
  row,
  rowById,
  rpcError,
  serve,
  snapshot,
  withDir,
  withServer,
} from "./helpers/sqlite.ts";

// ---------------------------------------------------------------------------
// compaction

Deno.test("sqlite: KV.Compact removes superseded rows and tombstones, keeps live rows", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(path, async ({ client }) => {
      const H = '{"health":"true"}';
      const a1 = await put(client, "/c/a", "a1");
      const b1 = await put(client, "/c/b", "b1");
      const a2 = await put(client, "/c/a", "a2");
      const bDel = Number((await client.kv.deleteRange({ key: b("/c/b") })).header.revision);
      const c1 = await put(client, "/c/c", "c1");
      const a3 = await put(client, "/c/a", "a3");
      const d1 = await put(client, "/c/d", "d1");
      const cDel = Number((await client.kv.deleteRange({ key: b("/c/c") })).header.revision);
      const c2 = await put(client, "/c/c", "c2");
      const a4 = await put(client, "/c/a", "a4");
      const current = a4;
      assert.deepEqual([a1, b1, a2, bDel, c1, a3, d1, cDel, c2, a4], [
        3,
        4,
        5,
        6,
        7,
        8,
        9,
        10,
        11,
        12,
      ]);

      assert.deepEqual(await rpcError(client.kv.compact({ revision: current + 1 })), {
        code: OUT_OF_RANGE,
        details: ERR_FUTURE,
      });

      const target = d1;
      const before = kineRows(path);
      const atTarget = await snapshot(client, target);
      assert.deepEqual(atTarget, {
        "/c/a": "a3",
        "/c/c": "c1",
        "/c/d": "d1",
        "/registry/health": H,
      });

      const res = await client.kv.compact({ revision: target });
      assert.equal(Number(res.header.revision), current, "Compact answers the current revision");
      assert.equal(await header(client), current, "Compact creates no revision");

      // Spec §3.7: rows named by a prev_revision at or below T, and tombstones at or below T.
      const gone = new Set<number>();
      for (const r of before) {
        if (r.name !== "compact_rev_key" && r.prev_revision !== 0 && r.id <= target) {
          gone.add(r.prev_revision);
        }
        if (r.deleted !== 0 && r.id <= target) gone.add(r.id);
      }
      assert.deepEqual([...gone].sort((x, y) => x - y), [a1, b1, a2, bDel]);
      const after = kineRows(path);
      assert.deepEqual(
        after.map((r) => r.id),
        before.filter((r) => !gone.has(r.id)).map((r) => r.id),
      );
      assert.deepEqual(after.map((r) => r.id), [1, 2, c1, a3, d1, cDel, c2, a4]);
      assert.deepEqual(
        after.find((r) => r.id === 1),
        row(1, "compact_rev_key", {
          created: 1,
          prev_revision: target,
          value: "",
        }),
      );
      // The surviving update row still carries the compacted previous value.
      assert.equal(rowById(path, a3).old_value, "a2");

      // Reads at exactly the compact revision succeed; below it they fail.
      assert.deepEqual(await snapshot(client, target), atTarget);
      assert.deepEqual(kvs(await client.kv.range({ key: b("/c/a"), revision: target })), [
        { key: "/c/a", value: "a3", create: a1, mod: a3, lease: 0 },
      ]);
      assert.deepEqual(await rpcError(client.kv.range({ key: b("/c/a"), revision: target - 1 })), {
        code: OUT_OF_RANGE,
        details: ERR_COMPACTED,
      });
      assert.deepEqual(await snapshot(client, cDel), {
        "/c/a": "a3",
        "/c/d": "d1",
        "/registry/health": H,
      });
      assert.deepEqual(await snapshot(client), {
        "/c/a": "a4",
        "/c/c": "c2",
        "/c/d": "d1",
        "/registry/health": H,
      });

      for (const revision of [target, target - 1, 1]) {
        assert.deepEqual(await rpcError(client.kv.compact({ revision })), {
          code: OUT_OF_RANGE,
          details: ERR_COMPACTED,
        }, `Compact(${revision}) after compacting to ${target}`);
      }
      assert.equal(await header(client), current);
      assert.equal(await put(client, "/c/e", "e1"), current + 1);

      // Compacting to the current revision keeps exactly the live rows.
      const cur = current + 1;
      await client.kv.compact({ revision: cur });
      assert.deepEqual(
        kineRows(path).map((r) => [r.id, r.name]),
        [
          [1, "compact_rev_key"],
          [2, "/registry/health"],
          [d1, "/c/d"],
          [c2, "/c/c"],
          [a4, "/c/a"],
          [cur, "/c/e"],
        ],
      );
      assert.equal(rowById(path, 1).prev_revision, cur);
      assert.equal(await header(client), cur);
    });
  });
});

Deno.test("sqlite: KV.Compact compacts exactly to its revision; compactMinRetain is the periodic compactor's", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(
      path,
      async ({ client }) => {
        let current = 0;
        for (let i = 0; i < 10; i++) current = await put(client, "/m/k", `v${i}`);
        assert.equal(current, 12);
        const target = current - 1;
        await client.kv.compact({ revision: target });
        assert.equal(rowById(path, 1).prev_revision, target);
        assert.equal(await header(client), current);
        // Only the row live at the target and the newer one survive.
        assert.deepEqual(kineRows(path, "WHERE name = '/m/k'").map((r) => r.id), [11, 12]);
        const atTarget = kvs(await client.kv.range({ key: b("/m/k"), revision: target }));
        assert.equal(atTarget[0].value, "v8");
        assert.deepEqual(
          await rpcError(client.kv.range({ key: b("/m/k"), revision: target - 1 })),
          { code: OUT_OF_RANGE, details: ERR_COMPACTED },
        );
        assert.deepEqual(await rpcError(client.kv.compact({ revision: target })), {
          code: OUT_OF_RANGE,
          details: ERR_COMPACTED,
        });
      },
      "",
      { compactMinRetain: 5 },
    );
  });
});

Deno.test("sqlite: compaction over ~350 revisions runs in batches of 100", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    let logged = "";
    const logger = createLogger({
      format: "plain",
      stderr: {
        writeSync(p: Uint8Array) {
          logged += dec.decode(p);
          return p.length;
        },
      },
    });
    await withServer(
      path,
      async ({ client }) => {
        const last = new Map<string, string>();
        for (let round = 0; round < 7; round++) {
          const writes = [];
          for (let i = 0; i < 50; i++) {
            const key = `/batch/${i % 10}`;
            const value = `r${round}-${i}`;
            last.set(key, value);
            writes.push(put(client, key, value));
          }
          await Promise.all(writes);
        }
        const current = await header(client);
        assert.equal(current, 352);
        const res = await client.kv.compact({ revision: current });
        assert.equal(Number(res.header.revision), current);
        assert.equal(await header(client), current);
        const rows = kineRows(path);
        assert.equal(rows.length, 12, "bookkeeping + health + one row per key");
        assert.deepEqual(
          rows[0],
          row(1, "compact_rev_key", {
            created: 1,
            prev_revision: current,
            value: "",
          }),
        );
        const snap = await snapshot(client);
        for (const [key, value] of last) assert.equal(snap[key], value);
        const m = logged.match(/compacted from (\d+) to (\d+) in (\d+) transactions/);
        assert.ok(m, `no compaction summary logged:\n${logged}`);
        assert.deepEqual([Number(m[1]), Number(m[2])], [0, current]);
        assert.ok(Number(m[3]) >= 4, `expected >= 4 batch transactions, got ${m[3]}`);
      },
      "",
      { compactBatchSize: 100, compactMinRetain: 0 },
      logger,
    );
  });
});

Deno.test("sqlite: a compaction checkpoints the WAL unless _kine_disable_compact_wal_checkpoint", async () => {
  // Without the WAL keeper (_kine_disable_wal_autocheckpoint) nothing else copies the WAL back,
  // so the database file changes during the run only through the post-compaction checkpoint.
  const fileAfterCompaction = async (path: string, params: string) => {
    let before = new Uint8Array(), after = new Uint8Array();
    await withServer(
      path,
      async ({ client }) => {
        for (let round = 0; round < 3; round++) {
          for (let i = 0; i < 20; i++) await put(client, `/wal/${i}`, `r${round}`);
        }
        before = Deno.readFileSync(path);
        await client.kv.compact({ revision: await header(client) });
        after = Deno.readFileSync(path);
      },
      params,
      { compactMinRetain: 0 },
    );
    return { before, after };
  };
  await withDir(async (dir) => {
    const checkpointed = await fileAfterCompaction(
      `${dir}/a.db`,
      "_kine_disable_wal_autocheckpoint=1",
    );
    assert.ok(!Buffer.from(checkpointed.after).equals(checkpointed.before), "file unchanged");
    const kept = await fileAfterCompaction(
      `${dir}/b.db`,
      "_kine_disable_wal_autocheckpoint=1&_kine_disable_compact_wal_checkpoint=1",
    );
    assert.ok(Buffer.from(kept.after).equals(kept.before), "the file changed");
  });
});

Deno.test("sqlite: compacting away a trailing tombstone never moves the revision back", async () => {
  // With compactMinRetain 0 the newest row may be a tombstone that compaction
  // deletes (spec §3.7 note). etcd revisions never decrease: headers must stay
  // at the deletion's revision, a read at that revision must work, and writes
  // continue after it, also across a restart.
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    let del = 0;
    const seen: Record<string, unknown> = {};
    await withServer(path, async ({ client }) => {
      await put(client, "/t/k", "v");
      del = Number((await client.kv.deleteRange({ key: b("/t/k") })).header.revision);
      const res = await client.kv.compact({ revision: del });
      seen.compactHeader = Number(res.header.revision);
      seen.rangeHeader = await header(client);
      seen.readAtDeletion = await client.kv.range({ key: b("/t/k"), revision: del }).then(
        () => "ok",
        (e: { details: string }) => e.details,
      );
    });
    await withServer(path, async ({ client }) => {
      seen.headerAfterRestart = await header(client);
      seen.nextWrite = await put(client, "/t/next", "v");
    });
    assert.deepEqual(seen, {
      compactHeader: del,
      rangeHeader: del,
      readAtDeletion: "ok",
      headerAfterRestart: del,
      nextWrite: del + 1,
    });
  });
});

Deno.test("sqlite: KV.Compact on an instance that has not polled another's writes", async () => {
  // Two kine on one file: revisions written through A are committed and
  // visible to B's reads at once, but B's poll loop only picks them up on its
  // next tick. Compact(current) through B must still compact to current (or
  // fail); it must not stop at B's poll position and answer success.
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const A = await serve(path);
    try {
      const B = await serve(path);
      try {
        let current = 0;
        for (let i = 0; i < 10; i++) current = await put(A.client, "/lag/k", `v${i}`);
        assert.equal(await header(B.client), current, "B reads A's writes");
        const res = await B.client.kv.compact({ revision: current });
        assert.equal(Number(res.header.revision), current);
        assert.equal(rowById(path, 1).prev_revision, current, "compact revision in the file");
        assert.deepEqual(
          await rpcError(B.client.kv.range({ key: b("/lag/k"), revision: current - 1 })),
          { code: OUT_OF_RANGE, details: ERR_COMPACTED },
        );
      } finally {
        await B.close();
      }
    } finally {
      await A.close();
    }
  });
});
