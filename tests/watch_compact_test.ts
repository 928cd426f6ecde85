/**
 * Compaction as readers and watchers see it (spec §3.5–3.7, §13 item 22), and two
 * tests that only measure and print (delivery latency, memory per idle watch).
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { b, s } from "./helpers/client.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, withKine } from "./helpers/kine.ts";
import { conformance, restartable } from "./helpers/conformance.ts";
import { key, WatchClient } from "./helpers/watch.ts";
import {
  COMPACTED,
  del,
  FUTURE,
  OUT_OF_RANGE,
  put,
  rejects,
  sleep,
  streams,
  until,
} from "./helpers/watch_cases.ts";

conformance(
  "§22 KV.Compact: no new revision, rows below go, every live key's latest survives",
  async (k) => {
    const r3 = await put(k, "/c/a", "1");
    const r4 = await put(k, "/c/a", "2");
    await put(k, "/c/b", "1");
    const r6 = await del(k, "/c/b");
    const r7 = await put(k, "/c/c", "1");
    const r8 = await put(k, "/c/a", "3");
    const res = await k.client.kv.compact({ revision: r7 });
    assert.equal(res.header.revision, r8);
    assert.equal((await k.client.kv.range({ key: b("/nothing") })).header.revision, r8);
    await rejects(k.client.kv.compact({ revision: r7 }), OUT_OF_RANGE, COMPACTED);
    await rejects(k.client.kv.compact({ revision: r3 }), OUT_OF_RANGE, COMPACTED);
    await rejects(k.client.kv.compact({ revision: r8 + 1 }), OUT_OF_RANGE, FUTURE);

    const at = (revision: number) =>
      k.client.kv.range({ key: b("/"), range_end: b("0"), revision });
    await rejects(at(r6), OUT_OF_RANGE, COMPACTED);
    await rejects(at(r3), OUT_OF_RANGE, COMPACTED);
    const kvs = (r: any) =>
      r.kvs.map((kv: any) => `${s(kv.key)}=${s(kv.value)}@${kv.mod_revision}`);
    // the compact revision itself is still readable
    assert.deepEqual(kvs(await at(r7)), [
      `/c/a=2@${r4}`,
      `/c/c=1@${r7}`,
      "/registry/health=" +
      '{"health":"true"}@2',
    ]);
    assert.deepEqual(kvs(await at(0)), [
      `/c/a=3@${r8}`,
      `/c/c=1@${r7}`,
      "/registry/health=" +
      '{"health":"true"}@2',
    ]);
    // the superseded rows and the tombstone at or below 7 are gone, nothing else
    const db = new DatabaseSync(`${k.dir}/state.db`, { readOnly: true });
    try {
      const ids = db.prepare("SELECT id FROM kine ORDER BY id").all().map((r: any) => Number(r.id));
      assert.deepEqual(ids, [1, 2, r4, r7, r8]);
    } finally {
      db.close();
    }
    // the next write takes the next revision: compaction consumed none
    assert.equal(await put(k, "/c/d", "1"), r8 + 1);
  },
  { compactMinRetain: 0 },
  (b) => b.name === "sqlite", // reads the SQLite file itself
);

restartable(
  "§3.7 compacting a trailing tombstone (min-retain 0) does not move the revision back after a restart",
  async (endpoint, backend) => {
    let k = await startTestKine({ endpoint, compactMinRetain: 0 });
    let last = 0;
    try {
      await put(k, "/t/a", "1");
      last = await del(k, "/t/a");
      await k.client.kv.compact({ revision: last });
      const before = (await k.client.kv.range({ key: b("/t/a") })).header.revision;
      // NATS: the compaction record takes one revision.
      const expected = last + (backend.compactionWrites ? 1 : 0);
      assert.equal(before, expected, `revision went from ${last} to ${before} right after Compact`);
      await k.client.kv.range({ key: b("/t/a"), revision: last });
    } finally {
      await k.close();
    }
    k = await startTestKine({ endpoint, compactMinRetain: 0 });
    try {
      const r = await k.client.kv.range({ key: b("/t/a") });
      assert.ok(
        r.header.revision >= last,
        `revision went from ${last} to ${r.header.revision} across the restart`,
      );
      // reading at the compact revision must not be "future"
      await k.client.kv.range({ key: b("/t/a"), revision: last });
    } finally {
      await k.close();
    }
  },
);

conformance(
  "etcdctl compaction N, then get --rev and watch --rev below N fail as compacted",
  async (k) => {
    await put(k, "/e/a", "1");
    const r4 = await put(k, "/e/a", "2");
    await put(k, "/e/a", "3");
    const c = await etcdctl(k.endpoint, ["compaction", String(r4)]);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout, `compacted revision ${r4}\n`);
    const below = await etcdctl(k.endpoint, ["get", "/e/a", `--rev=${r4 - 1}`]);
    assert.notEqual(below.code, 0);
    assert.match(below.stderr, /Error: etcdserver: mvcc: required revision has been compacted/);
    const atCompact = await etcdctl(k.endpoint, ["get", "/e/a", `--rev=${r4}`]);
    assert.equal(atCompact.stdout, "/e/a\n2\n");
    const w = await etcdctl(k.endpoint, ["watch", "/e/a", `--rev=${r4 - 1}`]);
    assert.equal(w.code, 5);
    assert.equal(w.stdout, "");
    assert.equal(
      w.stderr,
      `watch was canceled (${COMPACTED})\nError: watch is canceled by the server\n`,
    );
    const again = await etcdctl(k.endpoint, ["compaction", String(r4)]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /required revision has been compacted/);
  },
  { compactMinRetain: 0 },
);

conformance(
  "automatic compactor: compacts to the revision seen one tick earlier; KV.Compact only validates",
  async (k, backend) => {
    const started = performance.now();
    const compactedAt = async (rev: number) => {
      try {
        await k.client.kv.range({ key: b("/ac/a"), revision: rev });
        return false;
      } catch (err: any) {
        assert.equal(err.details, COMPACTED);
        return true;
      }
    };
    const r3 = await put(k, "/ac/a", "1");
    const r4 = await put(k, "/ac/a", "2");
    await sleep(1400 - (performance.now() - started));
    // tick 1 (~1 s) saw r4 as current; this write comes after it
    const r5 = await put(k, "/ac/a", "3");
    assert.equal(await compactedAt(r3), false, "compacted before tick 2");
    for (;;) {
      if (await compactedAt(r3)) break;
      assert.ok(performance.now() - started < 2800, "no compaction by tick 2");
      await sleep(50);
    }
    // tick 2 compacted to r4 exactly: r4 and r5 stay readable
    assert.equal(await compactedAt(r4), false, "compacted past the previous tick's revision");
    const at5 = await k.client.kv.range({ key: b("/ac/a"), revision: r5 });
    assert.equal(s(at5.kvs[0].value), "3");
    // with the compactor on, KV.Compact validates but leaves compaction to it
    const res = await k.client.kv.compact({ revision: r5 });
    // NATS: the compactor's records take revisions of their own (one per run at most)
    if (backend.compactionWrites) assert.ok(res.header.revision > r5);
    else assert.equal(res.header.revision, r5);
    assert.equal(await compactedAt(r4), false, "KV.Compact compacted");
    await rejects(k.client.kv.compact({ revision: r4 }), OUT_OF_RANGE, COMPACTED);
    const future = backend.compactionWrites ? res.header.revision + 10 : r5 + 1;
    await rejects(k.client.kv.compact({ revision: future }), OUT_OF_RANGE, FUTURE);
  },
  { compactInterval: 1000, compactMinRetain: 0 },
);

Deno.test("§22 watch prev_kv comes from old_value when the previous row is gone", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-oldvalue-" });
  const file = `${dir}/kine.db`;
  try {
    let k = await startTestKine({ endpoint: `sqlite://${file}` });
    let r3 = 0, r4 = 0, r5 = 0, r6 = 0;
    try {
      r3 = await put(k, "/o/a", "a1");
      r4 = await put(k, "/o/a", "a2");
      r5 = await put(k, "/o/b", "b1");
      r6 = await del(k, "/o/b");
    } finally {
      await k.close();
    }
    // take the previous rows away, as a compaction by another process could
    const db = new DatabaseSync(file);
    db.prepare("DELETE FROM kine WHERE id IN (?, ?)").run(r3, r5);
    db.close();
    k = await startTestKine({ endpoint: `sqlite://${file}` });
    try {
      await streams(k, 1, async (w) => {
        const id = (await w.watch({ key: "/o/", rangeEnd: "/o0", prevKv: true, startRevision: r4 }))
          .watch_id;
        const ev = await w.waitEvents(id, 2);
        assert.deepEqual(
          ev.map((
            e,
          ) => [e.type, key(e), e.kv.mod_revision, s(e.prev_kv?.value), e.prev_kv?.mod_revision]),
          [["PUT", "/o/a", r4, "a1", r3], ["DELETE", "/o/b", r6, "b1", r5]],
        );
        console.log(
          "prev_kv create_revision/version/lease with the previous row gone:",
          ev.map((e) => [e.prev_kv.create_revision, e.prev_kv.version, e.prev_kv.lease]),
        );
      });
    } finally {
      await k.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
};

Deno.test("measure: event delivery latency at ~200 writes/s for 3 s, one watcher", () =>
  withKine(async (k) => {
    await streams(k, 1, async (w) => {
      const id = (await w.watch({ key: "/lat/", rangeEnd: "/lat0" })).watch_id;
      const N = 600;
      const sentAt = new Map<number, number>();
      const ackAt = new Map<number, number>();
      const pending: Promise<void>[] = [];
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const wait = t0 + i * 5 - performance.now();
        if (wait > 0) await sleep(wait);
        const at = performance.now();
        pending.push(
          k.client.kv.put({ key: b(`/lat/${i % 10}`), value: b(`${i}`) }).then((r: any) => {
            sentAt.set(r.header.revision, at);
            ackAt.set(r.header.revision, performance.now());
          }),
        );
      }
      await Promise.all(pending);
      const elapsed = performance.now() - t0;
      await w.waitEvents(id, N, 10_000);
      const arrived = new Map<number, number>();
      for (const r of w.responses) for (const e of r.events) arrived.set(e.kv.mod_revision, r.at);
      assert.equal(arrived.size, N);
      const fromAck = [...ackAt].map(([rev, t]) => arrived.get(rev)! - t);
      const fromSend = [...sentAt].map(([rev, t]) => arrived.get(rev)! - t);
      const rtt = [...ackAt].map(([rev, t]) => t - sentAt.get(rev)!);
      const f = (x: number) => x.toFixed(2);
      console.log(
        `${N} puts in ${Math.round(elapsed)} ms (${(N / elapsed * 1000).toFixed(0)}/s); ` +
          `${w.responses.filter((r) => r.events.length).length} event responses\n` +
          `  ack → event ms:  p50 ${f(pct(fromAck, 0.5))}  p99 ${f(pct(fromAck, 0.99))}  ` +
          `max ${f(Math.max(...fromAck))}  min ${f(Math.min(...fromAck))}\n` +
          `  send → event ms: p50 ${f(pct(fromSend, 0.5))}  p99 ${f(pct(fromSend, 0.99))}  ` +
          `max ${f(Math.max(...fromSend))}\n` +
          `  put round trip ms: p50 ${f(pct(rtt, 0.5))}  p99 ${f(pct(rtt, 0.99))}`,
      );
    });
  }));

Deno.test("measure: heap per idle watch (1000 watches on one stream)", () =>
  withKine(async (k) => {
    await streams(k, 1, async (w) => {
      w.keep = false;
      const wave = async (prefix: string, n: number) => {
        const target = w.count + n;
        for (let i = 0; i < n; i++) w.create({ key: `${prefix}${i}` });
        await until(() => w.count >= target, 10_000, `${n} created responses`);
      };
      // run with --v8-flags=--expose-gc for steadier numbers
      const gc = (globalThis as any).gc as (() => void) | undefined;
      const heap = async () => {
        await sleep(200);
        gc?.();
        return Deno.memoryUsage().heapUsed;
      };
      await wave("/warm/", 100);
      const h0 = await heap();
      await wave("/idle/a/", 1000);
      const h1 = await heap();
      await wave("/idle/b/", 1000);
      const h2 = await heap();
      console.log(
        `heapUsed per idle watch (server and client in one process, ${
          gc ? "after gc()" : "no forced GC"
        }): ` +
          `first 1000: ${Math.round((h1 - h0) / 1000)} B, next 1000: ${
            Math.round((h2 - h1) / 1000)
          } B`,
      );
      // they are live watches
      const before = w.count;
      await put(k, "/idle/b/999", "x");
      await until(() => w.count > before, 3000, "an event on watch 2099");
    });
  }));

Deno.test("[sqlite] the server's own writes reach prev_kv watchers as the writer knew them, unread", async () => {
  const k = await startTestKine({ metricsBindAddress: "127.0.0.1:0" });
  const w = new WatchClient(k.endpoint);
  try {
    const lease = Number((await k.client.lease.leaseGrant({ TTL: 60 })).ID);
    const id = (await w.watch({ key: "/own/", rangeEnd: "/own0", prevKv: true })).watch_id;
    const r1 = await put(k, "/own/a", "1");
    const r2 = (await k.client.kv.put({ key: b("/own/a"), value: b("2"), lease })).header.revision;
    const r3 = await del(k, "/own/a");
    const r4 = await put(k, "/own/a", "3");
    const events = await w.waitEvents(id, 4);
    const kv = (e: any) =>
      e && [s(e.key), s(e.value), e.create_revision, e.mod_revision, e.version, e.lease];
    assert.deepEqual(events.map((e) => [e.type, kv(e.kv), kv(e.prev_kv)]), [
      ["PUT", ["/own/a", "1", r1, r1, 1, 0], null],
      ["PUT", ["/own/a", "2", r1, r2, 2, lease], ["/own/a", "1", r1, r1, 1, 0]],
      ["DELETE", ["/own/a", "", 0, r3, 0, 0], ["/own/a", "2", r1, r2, 2, lease]],
      ["PUT", ["/own/a", "3", r4, r4, 1, 0], null],
    ]);
    const text = await (await fetch(k.kine.metricsUrl!)).text();
    const own = Number(/^kine_watch_own_rows_total (\S+)$/m.exec(text)?.[1]);
    assert.ok(own >= 1, `kine_watch_own_rows_total ${own}`);
  } finally {
    await w.close();
    await k.close();
  }
});
