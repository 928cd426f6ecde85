/**
 * `KV.Compact(r)` compacts exactly to r on every backend, as etcd does:
 * reads and watches below r are compacted as soon as it answers;
 * `--compact-min-retain` bounds only kine's own periodic compactor.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import type { TestKine } from "./helpers/kine.ts";
import { conformance } from "./helpers/conformance.ts";
import { WatchClient } from "./helpers/watch.ts";

const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const FUTURE = "etcdserver: mvcc: required revision is a future revision";
const OUT_OF_RANGE = 11;

async function rejects(p: Promise<unknown>, details: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, OUT_OF_RANGE, err.details);
    assert.equal(err.details, details);
    return true;
  });
}

async function put(k: TestKine, key: string, value: string): Promise<number> {
  return (await k.client.kv.put({ key: b(key), value: b(value) })).header.revision;
}

conformance(
  "Compact(r) compacts exactly to r under the default --compact-min-retain",
  async (k) => {
    const revs: number[] = [];
    for (let i = 1; i <= 5; i++) revs.push(await put(k, "/ce/k", `v${i}`));
    const r = revs[2];
    await k.client.kv.compact({ revision: r });
    // below r: compacted at once, for reads, watches and a second Compact
    await rejects(k.client.kv.range({ key: b("/ce/k"), revision: r - 1 }), COMPACTED);
    await rejects(k.client.kv.compact({ revision: r }), COMPACTED);
    await rejects(k.client.kv.compact({ revision: r - 1 }), COMPACTED);
    const at = await k.client.kv.range({ key: b("/ce/k"), revision: r });
    assert.equal(s(at.kvs[0].value), "v3");
    assert.equal((await k.client.maintenance.hashKV({ revision: 0 })).compact_revision, r);
    const w = new WatchClient(k.endpoint);
    try {
      const below = await w.watch({ key: "/ce/k", startRevision: r - 1 });
      const canceled = await w.waitFor((x) => x.canceled && x.watch_id === below.watch_id, 3000);
      assert.equal(canceled.compact_revision, r);
      assert.equal(canceled.cancel_reason, COMPACTED);
      const from = await w.watch({ key: "/ce/k", startRevision: r });
      const events = await w.waitEvents(from.watch_id, 3);
      assert.deepEqual(events.map((e) => s(e.kv.value)), ["v3", "v4", "v5"]);
    } finally {
      await w.close();
    }
    const head = k.kine.backend.currentRevision();
    await rejects(k.client.kv.compact({ revision: head + 1 }), FUTURE);
    // up to the head itself
    await k.client.kv.compact({ revision: revs[4] });
    await rejects(k.client.kv.range({ key: b("/ce/k"), revision: revs[3] }), COMPACTED);
    assert.equal(s((await k.client.kv.range({ key: b("/ce/k") })).kvs[0].value), "v5");
  },
);

conformance(
  "the periodic compactor keeps the newest --compact-min-retain revisions",
  async (k) => {
    let last = 0;
    for (let i = 0; i < 20; i++) last = await put(k, `/cr/${i % 4}`, `v${i}`);
    const compactRevision = async () =>
      (await k.client.maintenance.hashKV({ revision: 0 })).compact_revision;
    const deadline = performance.now() + 10_000;
    while (await compactRevision() < last - 5) {
      assert.ok(performance.now() < deadline, `compact revision ${await compactRevision()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // a few more ticks: it never passes the retained revisions
    await new Promise((r) => setTimeout(r, 800));
    const head = k.kine.backend.currentRevision();
    assert.ok(await compactRevision() <= head - 5, `${await compactRevision()} vs ${head}`);
    assert.ok(await compactRevision() <= last, "compacted past the last write");
  },
  { compactInterval: 200, compactMinRetain: 5 },
);
