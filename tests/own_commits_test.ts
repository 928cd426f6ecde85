/**
 * A process publishes the rows of its own single-key txns to its watchers
 * from what it wrote, without reading them back from PostgreSQL or MariaDB:
 * the events must be exactly those a read of the store gives.
 */
import assert from "node:assert/strict";
import { b } from "./helpers/client.ts";
import { MYSQL, POSTGRES } from "./helpers/backends.ts";
import { sqlAdmin } from "./helpers/sql_admin.ts";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions } from "../lib/mod.ts";
import { defaultConfig } from "../lib/config/parse.ts";
import { createKineMetrics } from "../lib/metrics/mod.ts";
import type { Event, Op, Txn } from "../lib/backend/types.ts";
import { deleteOp, kubeTxn, putOp, silent } from "../bench/kube_txns.ts";

/** Events as plain data (values as arrays), for deep comparison. */
function plain(events: Event[]) {
  const kv = (k: Event["kv"]) => ({ ...k, value: [...k.value] });
  return events.map((e) => ({ ...e, kv: kv(e.kv), prevKv: e.prevKv && kv(e.prevKv) }));
}

const put = (key: string, value: string, lease = 0): Op => {
  const op = putOp(key, b(value));
  return op.type === "put" ? { ...op, lease } : op;
};

for (const backend of [POSTGRES, MYSQL]) {
  Deno.test(`[${backend.name}] own commits are published as the store holds them`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "own" });
    const metrics = createKineMetrics();
    // No timer poll meanwhile (MariaDB's would read whatever committed since the last one).
    const cfg = { ...defaultConfig(), endpoint: backend.endpoint(dir), pollInterval: 60_000 };
    const { backend: kine } = await openBackend(backendOptions(cfg, silent, metrics));
    try {
      await kine.start();
      // A row as upstream kine writes it, without a version: a write on it counts the key's rows.
      const admin = await sqlAdmin(backend, dir);
      await admin.exec(
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, " +
          "old_value) VALUES ('/old', 1, 0, 0, 0, 0, ?, NULL)",
        [b("old1")],
      );
      await admin.close();
      const old = await kine.latestRevision();
      await kine.waitForSyncTo(old);
      const live: Event[] = [];
      const watch = await kine.watch("/", "\0", 0, (events) => {
        live.push(...events);
      });
      const from = kine.currentRevision() + 1;
      const read = () => metrics.watchRowsRead.get();
      const readBefore = read();
      const batch = (txns: Txn[]) => Promise.all(txns.map((t) => kine.txn(t)));
      // Creates (one on a key with a lease), then updates, a failed compare among them, deletes,
      // and a create again on a deleted key: each batch group-committed.
      const created = await batch([
        ...["/a", "/b", "/c"].map((k, i) => kubeTxn(k, 0, put(k, `${k}1`, i === 1 ? 7 : 0))),
        kubeTxn("/old", old, put("/old", "old2")),
      ]);
      const updated = await batch([
        kubeTxn("/a", created[0].revision, put("/a", "a2")),
        kubeTxn("/b", created[1].revision, put("/b", "b2")),
        kubeTxn("/c", 1, put("/c", "never")),
      ]);
      assert.deepEqual(updated.map((r) => r.succeeded), [true, true, false]);
      await batch([
        kubeTxn("/a", updated[0].revision, deleteOp("/a")),
        kubeTxn("/c", created[2].revision, deleteOp("/c")),
      ]);
      const last = (await batch([kubeTxn("/a", 0, put("/a", "a3"))]))[0].revision;
      await kine.waitForSyncTo(last);
      assert.equal(read(), readBefore, "the own rows were read back from the store");
      assert.equal(live.length, 9);
      assert.equal(live[3].kv.version, 2);

      // The same revisions read from the store: a watch from history (its catch-up reads them).
      const history: Event[] = [];
      const again = await kine.watch("/", "\0", from, (events) => {
        history.push(...events);
      });
      for (let i = 0; i < 200 && history.length < live.length; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      again.cancel();
      watch.cancel();
      assert.deepEqual(plain(live), plain(history.filter((e) => e.kv.modRevision <= last)));
    } finally {
      await kine.close();
      await backend.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}
