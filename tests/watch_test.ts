/**
 * The Watch service over gRPC and etcdctl, and compaction as readers and
 * watchers see it: spec §2.7, §3.5–3.7, §5 and §13 items 22, 25–34. The last
 * two tests only measure (delivery latency, memory per idle watch) and print.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { b, s } from "./helpers/client.ts";
import type { TestBackend } from "./helpers/backends.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, type TestKine, withKine } from "./helpers/kine.ts";
import { conformance, restartable } from "./helpers/conformance.ts";
import { brief, key, value, WatchClient, type WatchResponse } from "./helpers/watch.ts";
import { RawH2 } from "./helpers/h2raw.ts";

const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const FUTURE = "etcdserver: mvcc: required revision is a future revision";
const OUT_OF_RANGE = 11;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function put(k: TestKine, k_: string, v: string): Promise<number> {
  return (await k.client.kv.put({ key: b(k_), value: b(v) })).header.revision;
}

async function del(k: TestKine, k_: string): Promise<number> {
  return (await k.client.kv.deleteRange({ key: b(k_) })).header.revision;
}

/**
 * Writes `ops` in one txn, or one by one where a txn may write one key only
 * (NATS; in order, so the revisions are consecutive there too); returns the last revision.
 */
async function writeAll(k: TestKine, backend: TestBackend, ops: object[]): Promise<number> {
  if (backend.multiKeyTxn !== false) {
    return (await k.client.kv.txn({ compare: [], success: ops, failure: [] })).header.revision;
  }
  let last = 0;
  for (const op of ops) {
    last = (await k.client.kv.txn({ compare: [], success: [op] })).header.revision;
  }
  return last;
}

const revs = (events: any[]): number[] => events.map((e) => e.kv.mod_revision);
const keys = (events: any[]): string[] => events.map(key);

/** Opens `n` watch streams, runs `fn`, and always closes them. */
async function streams<T>(
  k: TestKine,
  n: number,
  fn: (...w: WatchClient[]) => Promise<T>,
  ownConnection = false,
): Promise<T> {
  const ws = Array.from({ length: n }, () => new WatchClient(k.endpoint, ownConnection));
  try {
    return await fn(...ws);
  } finally {
    for (const w of ws) await w.close();
  }
}

/** Header revisions on one stream never go backwards (0 aside), and are never 0 on events. */
function assertMonotonic(w: WatchClient): void {
  let max = 0;
  for (const r of w.responses) {
    const rev = r.header.revision;
    if (r.events.length > 0) assert.ok(rev > 0, `event response with revision 0: ${brief(r)}`);
    if (rev === 0) continue;
    assert.ok(rev >= max, `header went back from ${max} to ${rev}`);
    max = rev;
  }
}

/** Every event response's header is at least its last event's revision (equal if `exact`). */
function assertHeadersCoverEvents(w: WatchClient, exact: boolean): void {
  for (const r of w.responses) {
    if (r.events.length === 0) continue;
    const last = r.events[r.events.length - 1].kv.mod_revision;
    if (exact) assert.equal(r.header.revision, last, JSON.stringify(brief(r)));
    else assert.ok(r.header.revision >= last, JSON.stringify(brief(r)));
  }
}

/** Fails with the gRPC status code and message expected. */
async function rejects(p: Promise<unknown>, code: number, message: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code);
    assert.equal(err.details, message);
    return true;
  });
}

conformance(
  "§25 start revision R is inclusive, later R waits for R, 0 means from now",
  async (k) => {
    await put(k, "/w/a", "1");
    const r4 = await put(k, "/w/a", "2");
    const r5 = await put(k, "/w/b", "1");
    await put(k, "/x", "outside");
    const current = r5 + 1;
    const range = { key: "/w/", rangeEnd: "/w0" };
    await streams(k, 4, async (past, next, now, future) => {
      const cp = await past.watch({ ...range, startRevision: r4 });
      // the created response carries start-1 (at most the current revision),
      // or the synced revision for start 0
      assert.equal(cp.header.revision, r4 - 1);
      assert.equal(cp.watch_id, 0);
      const cn = await next.watch({ ...range, startRevision: current + 1 });
      assert.equal(cn.header.revision, current);
      const c0 = await now.watch(range);
      assert.equal(c0.header.revision, current);
      const cf = await future.watch({ ...range, startRevision: current + 3 });
      assert.equal(cf.header.revision, current);
      assert.deepEqual(revs(await past.waitEvents(cp.watch_id, 2)), [r4, r5]);

      const r7 = await put(k, "/w/c", "1");
      const r8 = await put(k, "/w/a", "3");
      const r9 = await put(k, "/w/b", "2");
      assert.equal(r9, current + 3);
      assert.deepEqual(revs(await past.waitEvents(cp.watch_id, 5)), [r4, r5, r7, r8, r9]);
      assert.deepEqual(revs(await next.waitEvents(cn.watch_id, 3)), [r7, r8, r9]);
      assert.deepEqual(revs(await now.waitEvents(c0.watch_id, 3)), [r7, r8, r9]);
      assert.deepEqual(revs(await future.waitEvents(cf.watch_id, 1)), [r9]);
      await sleep(150);
      assert.equal(past.events(cp.watch_id).length, 5);
      assert.equal(next.events(cn.watch_id).length, 3);
      assert.equal(now.events(c0.watch_id).length, 3);
      assert.equal(future.events(cf.watch_id).length, 1);
      for (const w of [past, next, now, future]) {
        assertMonotonic(w);
        assertHeadersCoverEvents(w, true);
        assert.ok(!w.responses.some((r) => r.canceled));
      }
    });
  },
);

conformance(
  "§26 watch below the compact revision: created, then canceled with compact_revision; at it: served",
  async (k) => {
    const r3 = await put(k, "/c/a", "1");
    await put(k, "/c/a", "2");
    const r5 = await put(k, "/c/b", "1");
    const r6 = await put(k, "/c/a", "3");
    await k.client.kv.compact({ revision: r5 });
    await streams(k, 1, async (w) => {
      for (const start of [1, r3, r5 - 1]) {
        const from = w.responses.length;
        const created = await w.watch({ key: "/c/", rangeEnd: "/c0", startRevision: start });
        assert.equal(created.canceled, false, `start ${start}: created and canceled at once`);
        const canceled = await w.waitFor(
          (r) => r.canceled && r.watch_id === created.watch_id,
          3000,
          from,
          `cancel of the watch from ${start}`,
        );
        assert.ok(w.responses.indexOf(created) < w.responses.indexOf(canceled));
        assert.equal(canceled.compact_revision, r5);
        assert.equal(canceled.cancel_reason, COMPACTED);
        assert.deepEqual(canceled.events, []);
      }
      // exactly the compact revision, as etcd: what compaction kept there (/c/b), then on
      const at = await w.watch({ key: "/c/", rangeEnd: "/c0", startRevision: r5 });
      assert.deepEqual(revs(await w.waitEvents(at.watch_id, 2)), [r5, r6]);
      // just above the compact revision is fine
      const ok = await w.watch({ key: "/c/", rangeEnd: "/c0", startRevision: r5 + 1 });
      assert.deepEqual(revs(await w.waitEvents(ok.watch_id, 1)), [r6]);
      await sleep(100);
      for (const id of [at.watch_id, ok.watch_id]) {
        assert.ok(!w.responses.some((r) => r.watch_id === id && r.canceled));
      }
      assertMonotonic(w);
    });
  },
  { compactMinRetain: 0 },
);

conformance(
  "§27 negative start, client-chosen ids, duplicate ids, automatic ids per stream from 0",
  async (k) => {
    await streams(k, 2, async (a, other) => {
      a.create({ key: "/i/", rangeEnd: "/i0", startRevision: -1 });
      const neg = await a.waitFor((r) => r.watch_id === -1, 3000, 0, "watch_id -1");
      assert.equal(neg.created, true);
      assert.equal(neg.canceled, true);
      assert.equal(neg.cancel_reason, COMPACTED);

      assert.equal((await a.watch({ key: "/i/a" })).watch_id, 0);
      assert.equal((await a.watch({ key: "/i/b", watchId: 7 })).watch_id, 7);
      // a duplicate id is refused; the watch that holds it keeps working
      const from = a.responses.length;
      a.create({ key: "/i/c", watchId: 7 });
      const dup = await a.waitFor((r) => r.canceled, 3000, from, "the duplicate's refusal");
      assert.equal(dup.created, true);
      assert.match(dup.cancel_reason, /duplicate watch ID/);
      assert.equal((await a.watch({ key: "/i/c" })).watch_id, 1);
      assert.equal((await a.watch({ key: "/i/d", watchId: 2 })).watch_id, 2);
      // automatic ids skip ids the client took
      assert.equal((await a.watch({ key: "/i/e" })).watch_id, 3);
      // ids are per stream
      assert.equal((await other.watch({ key: "/i/b" })).watch_id, 0);

      const rb = await put(k, "/i/b", "x");
      const rc = await put(k, "/i/c", "y");
      assert.deepEqual(revs(await a.waitEvents(7, 1)), [rb]);
      assert.deepEqual(revs(await a.waitEvents(1, 1)), [rc]);
      assert.deepEqual(revs(await other.waitEvents(0, 1)), [rb]);
      await sleep(100);
      assert.deepEqual(a.events(0), []);
      assert.deepEqual(a.events(2), []);
      assert.deepEqual(a.events(3), []);
      assert.equal(a.events(7).length, 1);
    });
  },
);

conformance(
  "§27 a duplicate client watch id is refused with watch_id -1, as etcd does",
  async (k) => {
    // etcd's mvcc returns id -1 with ErrWatcherDuplicateID; answering with the
    // taken id instead reads, to a client, as "your watch 5 was canceled".
    await streams(k, 1, async (w) => {
      assert.equal((await w.watch({ key: "/d/a", watchId: 5 })).watch_id, 5);
      const from = w.responses.length;
      w.create({ key: "/d/b", watchId: 5 });
      const dup = await w.waitFor((r) => r.canceled, 3000, from, "the duplicate's refusal");
      assert.equal(dup.created, true);
      assert.equal(dup.watch_id, -1, `refusal names watch ${dup.watch_id}`);
    });
  },
);

conformance(
  "§28 cancel answers once; a second cancel and an unknown id answer nothing",
  async (k) => {
    await streams(k, 1, async (w) => {
      const x = (await w.watch({ key: "/x" })).watch_id;
      const y = (await w.watch({ key: "/y" })).watch_id;
      w.cancel(x);
      const c = await w.waitFor((r) => r.canceled, 3000, 0, "cancel response");
      assert.equal(c.watch_id, x);
      assert.equal(c.created, false);
      assert.deepEqual(c.events, []);
      await put(k, "/x", "1");
      const ry = await put(k, "/y", "1");
      await w.waitEvents(y, 1);
      w.cancel(x);
      w.cancel(99);
      w.cancel(-1);
      const ry2 = await put(k, "/y", "2");
      assert.deepEqual(revs(await w.waitEvents(y, 2)), [ry, ry2]);
      await sleep(150);
      assert.equal(w.responses.filter((r) => r.canceled).length, 1);
      assert.deepEqual(w.events(x), []);
      assertMonotonic(w);
    });
  },
);

conformance(
  "§29 key ranges: [key,end) bounds, single key vs siblings, prefix, from-key, all keys",
  async (k) => {
    const watches = [
      { key: "/r/b", rangeEnd: "/r/d" },
      { key: "/s/foo" },
      { key: "/s/foo/", rangeEnd: "/s/foo0" },
      { key: "/t", rangeEnd: "\0" },
      { key: "\0", rangeEnd: "\0" },
    ];
    const expected = [["/r/b", "/r/b0", "/r/c"], ["/s/foo"], ["/s/foo/x"]];
    const written = [
      "/r/a",
      "/r/b",
      "/r/b0",
      "/r/c",
      "/r/d",
      "/r/d0",
      "/s/fo",
      "/s/foo",
      "/s/foobar",
      "/s/foo/x",
      "/s/foo0",
      "/sa",
      "/t",
      "/t/",
      "/u",
    ];
    expected.push(written.filter((x) => x >= "/t"), written);
    await streams(k, 2, async (live, catchUp) => {
      const liveIds = [];
      for (const o of watches) liveIds.push((await live.watch(o)).watch_id);
      let first = 0;
      for (const x of written) {
        const r = await put(k, x, "v");
        first ||= r;
      }
      const catchIds = [];
      for (const o of watches) {
        catchIds.push((await catchUp.watch({ ...o, startRevision: first })).watch_id);
      }
      for (let i = 0; i < watches.length; i++) {
        await live.waitEvents(liveIds[i], expected[i].length);
        await catchUp.waitEvents(catchIds[i], expected[i].length);
      }
      await sleep(150);
      for (let i = 0; i < watches.length; i++) {
        const what = JSON.stringify(watches[i]);
        assert.deepEqual(keys(live.events(liveIds[i])), expected[i], `live ${what}`);
        assert.deepEqual(keys(catchUp.events(catchIds[i])), expected[i], `catch-up ${what}`);
      }
    });
  },
);

conformance(
  "§29 range bounds compare bytes (UTF-8) like Range does, live and catching up",
  async (k) => {
    // UTF-8 byte order puts U+F000 between U+E000 and U+10000; UTF-16 code
    // unit order (JS string comparison) puts U+10000 (a surrogate pair) first.
    const lo = "/u/\uE000", hi = "/u/\u{10000}", inside = "/u/\uF000", above = "/u/\u{10001}";
    await streams(k, 2, async (live, catchUp) => {
      const l = (await live.watch({ key: lo, rangeEnd: hi })).watch_id;
      const first = await put(k, inside, "in");
      await put(k, above, "out");
      const listed = await k.client.kv.range({ key: b(lo), range_end: b(hi) });
      assert.deepEqual(listed.kvs.map((kv: any) => s(kv.key)), [inside], "Range itself");
      const c = (await catchUp.watch({ key: lo, rangeEnd: hi, startRevision: first })).watch_id;
      await sleep(300);
      assert.deepEqual(keys(catchUp.events(c)), [inside], "catch-up watch");
      assert.deepEqual(keys(live.events(l)), [inside], "live watch");
    });
  },
  {},
  (b) => b.name !== "mysql", // MySQL refuses non-ASCII keys (kv_test)
);

conformance(
  "a watch on a key that is not valid UTF-8 sees exactly that key, not U+FFFD",
  async (k) => {
    await streams(k, 1, async (w) => {
      const raw = new Uint8Array([0x2f, 0xff]);
      w.call.write({ create_request: { key: raw, start_revision: 0 } });
      const created = await w.waitFor((r) => r.created, 3000, 0, "created");
      assert.equal(created.canceled, false);
      await put(k, "/\uFFFD", "replacement character");
      await k.client.kv.put({ key: raw, value: b("exact") });
      const [e] = await w.waitEvents(created.watch_id, 1);
      assert.deepEqual([...e.kv.key], [...raw]);
      assert.equal(s(e.kv.value), "exact");
      assert.equal(w.events(created.watch_id).length, 1, "got another key's events");
    });
  },
  {},
  (b) => b.name === "sqlite" || b.name === "memory" || b.name === "nats", // text key columns
);

conformance(
  "§30 event shapes: prev_kv only when asked, update, delete, re-create, NOPUT/NODELETE",
  async (k) => {
    await streams(k, 1, async (w) => {
      const withPrev = (await w.watch({ key: "/e/k", prevKv: true })).watch_id;
      const plain = (await w.watch({ key: "/e/k" })).watch_id;
      const noPut = (await w.watch({ key: "/e/k", filters: ["NOPUT"], prevKv: true })).watch_id;
      const noDel = (await w.watch({ key: "/e/k", filters: ["NODELETE"] })).watch_id;
      const r1 = await put(k, "/e/k", "v1");
      const r2 = await put(k, "/e/k", "v2");
      const r3 = await del(k, "/e/k");
      const r4 = await put(k, "/e/k", "v3");
      const ev = await w.waitEvents(withPrev, 4);
      const kv = (e: any) =>
        e ? [s(e.key), s(e.value), e.create_revision, e.mod_revision, e.version] : null;
      assert.deepEqual(ev.map((e) => [e.type, kv(e.kv), kv(e.prev_kv)]), [
        ["PUT", ["/e/k", "v1", r1, r1, 1], null],
        ["PUT", ["/e/k", "v2", r1, r2, 2], ["/e/k", "v1", r1, r1, 1]],
        ["DELETE", ["/e/k", "", 0, r3, 0], ["/e/k", "v2", r1, r2, 2]],
        ["PUT", ["/e/k", "v3", r4, r4, 1], null],
      ]);
      const p = await w.waitEvents(plain, 4);
      assert.deepEqual(p.map((e) => [e.type, e.kv.mod_revision, e.prev_kv ?? null]), [
        ["PUT", r1, null],
        ["PUT", r2, null],
        ["DELETE", r3, null],
        ["PUT", r4, null],
      ]);
      const d = await w.waitEvents(noPut, 1);
      const u = await w.waitEvents(noDel, 3);
      await sleep(150);
      assert.deepEqual(w.events(noPut).map((e) => [e.type, e.kv.mod_revision]), [["DELETE", r3]]);
      assert.equal(s(d[0].prev_kv.value), "v2");
      assert.deepEqual(u.map((e) => e.type), ["PUT", "PUT", "PUT"]);
      assert.deepEqual(revs(w.events(noDel)), [r1, r2, r4]);
      // a filtered-out event produces no empty response
      assert.ok(!w.responses.some((r) => r.watch_id === noPut && !r.created && !r.events.length));
      assertMonotonic(w);
    });
  },
);

conformance(
  "§31 burst of writes: batched responses, in order, no duplicates, header = last event",
  async (k, backend) => {
    await streams(k, 1, async (w) => {
      const id = (await w.watch({ key: "/b/", rangeEnd: "/b0" })).watch_id;
      const ops = Array.from({ length: 120 }, (_, i) => ({
        request_put: { key: b(`/b/${String(i).padStart(3, "0")}`), value: b(`${i}`) },
      }));
      const last = await writeAll(k, backend, ops);
      const ev = await w.waitEvents(id, 120);
      assert.deepEqual(revs(ev), Array.from({ length: 120 }, (_, i) => last - 119 + i));
      assert.deepEqual(ev.map(value), Array.from({ length: 120 }, (_, i) => `${i}`));
      const carrying = w.responses.filter((r) => r.events.length > 0);
      if (backend.multiKeyTxn !== false) {
        assert.ok(
          carrying.length <= 2,
          `120 events of one txn came in ${carrying.length} responses`,
        );
      }

      // many parallel writers: group commits, still one ordered stream
      const acks = await Promise.all(
        Array.from({ length: 300 }, (_, i) => put(k, `/b/p${i % 7}`, `${i}`)),
      );
      const all = await w.waitEvents(id, 420);
      await sleep(150);
      assert.equal(w.events(id).length, 420);
      const later = revs(all.slice(120));
      assert.deepEqual(later, [...acks].sort((x, y) => x - y));
      const carried = w.responses.filter((r) => r.events.length > 0).length;
      console.log(`420 events arrived in ${carried} responses`);
      assert.ok(carried < 420, "no batching at all");
      assertMonotonic(w);
      assertHeadersCoverEvents(w, true);
    });
  },
);

conformance(
  "8 writers × 50 updates: prefix watchers (live and catching up) see each event once, in order, with prev_kv",
  async (k) => {
    const WRITERS = 8, UPDATES = 50;
    await streams(k, 3, async (live, late1, late2) => {
      const l = (await live.watch({ key: "/cw/", rangeEnd: "/cw0", prevKv: true })).watch_id;
      const acks: { key: string; j: number; rev: number }[] = [];
      let first = 0;
      const lateWatches: Promise<WatchResponse>[] = [];
      const writer = async (i: number) => {
        for (let j = 0; j < UPDATES; j++) {
          const rev = await put(k, `/cw/${i}`, `${i}:${j}`);
          acks.push({ key: `/cw/${i}`, j, rev });
          if (i === 0 && j === 0) first = rev;
          // watches created from the past while the writers keep writing
          if (acks.length === 100) {
            lateWatches.push(
              late1.watch({ key: "/cw/", rangeEnd: "/cw0", prevKv: true, startRevision: first }),
            );
          }
          if (acks.length === 250) {
            lateWatches.push(
              late2.watch({ key: "/cw/", rangeEnd: "/cw0", prevKv: true, startRevision: 1 }),
            );
          }
        }
      };
      await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
      const [c1, c2] = await Promise.all(lateWatches);
      const total = WRITERS * UPDATES;
      acks.sort((x, y) => x.rev - y.rev);
      const firstOfKey = new Map<string, number>();
      const lastOfKey = new Map<string, number>();
      const expected = acks.map((a) => {
        const prev = lastOfKey.get(a.key);
        if (a.j === 0) firstOfKey.set(a.key, a.rev);
        lastOfKey.set(a.key, a.rev);
        const created = firstOfKey.get(a.key);
        const v = `${a.key.slice(4)}:${a.j}`;
        const prevV = `${a.key.slice(4)}:${a.j - 1}`;
        return [a.key, v, a.rev, created, a.j + 1, a.j === 0 ? null : [prevV, prev, created, a.j]];
      });
      const shape = (e: any) => [
        key(e),
        value(e),
        e.kv.mod_revision,
        e.kv.create_revision,
        e.kv.version,
        !e.prev_kv ? null : [
          s(e.prev_kv.value),
          e.prev_kv.mod_revision,
          e.prev_kv.create_revision,
          e.prev_kv.version,
        ],
      ];
      for (
        const [name, w, id] of [["live", live, l], ["late@100", late1, c1.watch_id], [
          "late@250",
          late2,
          c2.watch_id,
        ]] as const
      ) {
        const ev = await w.waitEvents(id, total, 10_000);
        await sleep(50);
        assert.equal(w.events(id).length, total, `${name}: duplicates`);
        assert.deepEqual(ev.map(shape), expected, `${name}: sequence`);
        assertMonotonic(w);
        assertHeadersCoverEvents(w, true);
      }
    });
  },
);

conformance(
  "§32 periodic progress: idle progress_notify watches get empty responses on time, never ahead of events",
  async (k) => {
    const INTERVAL = 500;
    await streams(k, 2, async (w, quiet) => {
      const pn = (await w.watch({ key: "/pn/", rangeEnd: "/pn0", progressNotify: true })).watch_id;
      const np = (await w.watch({ key: "/np/", rangeEnd: "/np0" })).watch_id;
      const q = (await quiet.watch({ key: "/pn/", rangeEnd: "/pn0" })).watch_id;
      const isProgress = (r: WatchResponse) =>
        r.watch_id === pn && !r.created && !r.canceled && r.events.length === 0;

      // an outside write: the next notification reports at least its revision
      const r0 = await put(k, "/other", "x");
      const t0 = performance.now();
      const first = await w.waitFor((r) => isProgress(r) && r.header.revision >= r0, 2000);
      const late = first.at - t0;
      assert.ok(late <= INTERVAL * 1.1 + 150, `first notification after ${late} ms`);

      // writes to the watched range and elsewhere, interleaved with notifications
      const mine: number[] = [];
      for (let i = 0; i < 16; i++) {
        mine.push(await put(k, `/pn/${i % 3}`, `${i}`));
        await put(k, "/other", `${i}`);
        await sleep(60);
      }
      const lastWrite = await put(k, "/other", "end");
      const idleFrom = performance.now();
      await w.waitFor((r) => isProgress(r) && r.header.revision >= lastWrite, 2000);
      await sleep(1300);

      const progress = w.responses.filter(isProgress);
      assert.ok(progress.every((r) => r.header.revision > 0), "a progress notification at 0");
      // never ahead of an event the watch has not been sent yet
      for (const p of progress) {
        const before = w.responses.slice(0, w.responses.indexOf(p));
        const delivered = new Set(before.flatMap((r) => r.watch_id === pn ? revs(r.events) : []));
        for (const rev of mine) {
          if (rev <= p.header.revision) {
            assert.ok(delivered.has(rev), `progress ${p.header.revision} before event ${rev}`);
          }
        }
      }
      assert.deepEqual(revs(w.events(pn)), mine);
      // while idle: one per interval (+10 % jitter), with the current revision
      const idle = progress.filter((r) => r.at >= idleFrom);
      assert.ok(idle.length >= 2, `${idle.length} notifications in 1.3 s of idleness`);
      for (let i = 1; i < idle.length; i++) {
        const gap = idle[i].at - idle[i - 1].at;
        assert.ok(gap <= INTERVAL * 1.1 + 150, `notifications ${gap} ms apart`);
      }
      assert.ok(idle.every((r) => r.header.revision === lastWrite));
      // watches without progress_notify get nothing
      assert.ok(!w.responses.some((r) => r.watch_id === np && !r.created));
      assert.ok(
        !quiet.responses.some((r) => r.watch_id === q && r.events.length === 0 && !r.created),
      );
      assertMonotonic(w);
    });
  },
  { watchProgressNotifyInterval: 500 },
);

conformance(
  "§33 WatchProgressRequest: one watch_id -1 response per request, after the events it covers",
  async (k, backend) => {
    await streams(k, 2, async (w, empty) => {
      const id = (await w.watch({ key: "/pr/", rangeEnd: "/pr0" })).watch_id;
      const ops = Array.from({ length: 100 }, (_, i) => ({
        request_put: { key: b(`/pr/${i}`), value: b("v") },
      }));
      const last = await writeAll(k, backend, ops);
      w.requestProgress();
      const p = await w.waitFor((r) => r.watch_id === -1, 3000, 0, "progress response");
      assert.equal(p.header.revision, last);
      assert.equal(p.created, false);
      assert.equal(p.canceled, false);
      assert.deepEqual(p.events, []);
      const before = w.responses.slice(0, w.responses.indexOf(p));
      assert.equal(before.flatMap((r) => r.watch_id === id ? r.events : []).length, 100);

      // ten requests 100 ms apart, no writes: at most ten answers, all at the same revision
      const from = w.responses.length;
      for (let i = 0; i < 10; i++) {
        w.requestProgress();
        await sleep(100);
      }
      await sleep(300);
      const answers = w.responses.slice(from).filter((r) => r.watch_id === -1);
      console.log(`10 progress requests → ${answers.length} answers`);
      assert.ok(answers.length >= 1 && answers.length <= 10, `${answers.length} answers`);
      assert.ok(answers.every((r) => r.header.revision === last));
      assert.equal(w.responses.length - from, answers.length, "other responses appeared");

      // a stream without watches answers with the current revision
      const other = await put(k, "/other", "x");
      empty.requestProgress();
      const e = await empty.waitFor((r) => r.watch_id === -1, 3000, 0, "progress response");
      assert.equal(e.header.revision, other);
      assertMonotonic(w);
    });
  },
);

conformance(
  "§33 WatchProgressRequest under writes: answered at once, after every event it covers",
  async (k) => {
    await streams(k, 1, async (w) => {
      const id = (await w.watch({ key: "/pw/", rangeEnd: "/pw0" })).watch_id;
      let writing = true;
      const acked: number[] = [];
      const writers = Array.from({ length: 4 }, async (_, j) => {
        for (let i = 0; writing; i++) acked.push(await put(k, `/pw/${j}/${i % 50}`, "v"));
      });
      const latencies: number[] = [];
      for (let i = 0; i < 20; i++) {
        const from = w.responses.length;
        const asked = performance.now();
        w.requestProgress();
        const p = await w.waitFor((r) => r.watch_id === -1, 3000, from, "progress response");
        latencies.push(p.at - asked);
        // everything acknowledged before the request was delivered before the answer
        const before = new Set(
          revs(
            w.responses.slice(0, w.responses.indexOf(p)).flatMap((r) =>
              r.watch_id === id ? r.events : []
            ),
          ),
        );
        const covered = acked.filter((rev) => rev <= p.header.revision);
        assert.deepEqual(
          covered.filter((rev) => !before.has(rev)),
          [],
          `progress ${p.header.revision}`,
        );
        await sleep(20);
      }
      writing = false;
      await Promise.all(writers);
      latencies.sort((a, b) => a - b);
      console.log(
        `progress answer under writes: p50 ${latencies[10].toFixed(1)} ms, max ${
          latencies[19].toFixed(1)
        } ms, ${acked.length} writes`,
      );
      assert.ok(acked.length > 20, `${acked.length} writes`);
      // not held to a poll tick (1 s): the median answer comes well before one
      assert.ok(latencies[10] < 250, `median ${latencies[10]} ms`);
      assertMonotonic(w);
    });
  },
);

conformance(
  "§33 a watch with a future start revision does not push the stream's headers past the store",
  async (k) => {
    await streams(k, 1, async (w) => {
      const id = (await w.watch({ key: "/h/", rangeEnd: "/h0" })).watch_id;
      const current = await put(k, "/h/a", "1");
      await w.waitEvents(id, 1);
      // a second watch waiting for a revision far ahead (its own created
      // response says start-1 by design; the other responses must not)
      const far = await w.watch({ key: "/far", startRevision: current + 100 });
      const next = await put(k, "/h/a", "2");
      await w.waitEvents(id, 2);
      w.requestProgress();
      const p = await w.waitFor((r) => r.watch_id === -1, 3000, 0, "progress response");
      const bad = w.responses.filter((r) => r !== far && r.header.revision > next);
      assert.deepEqual(
        bad.map(brief),
        [],
        `headers above the store's revision ${next} (progress said ${p.header.revision})`,
      );
    });
  },
);

/** Writes `n` puts of ~1 KiB under `prefix` in 125-op txns, 16 in flight; returns the last revision. */
async function writeMany(
  k: TestKine,
  backend: TestBackend,
  prefix: string,
  n: number,
): Promise<number> {
  const v = b("x".repeat(1000));
  let last = 0;
  let inFlight: Promise<void>[] = [];
  for (let i = 0; i * 125 < n; i++) {
    const ops = [];
    for (let j = 0; j < 125 && i * 125 + j < n; j++) {
      ops.push({ request_put: { key: b(`${prefix}${i}/${j}`), value: v } });
    }
    // One txn per put where a txn may write one key only (NATS).
    const txns = backend.multiKeyTxn === false ? ops.map((op) => [op]) : [ops];
    for (const success of txns) {
      inFlight.push(
        k.client.kv.txn({ compare: [], success, failure: [] }).then((r: any) => {
          last = Math.max(last, r.header.revision);
        }),
      );
    }
    if (inFlight.length >= 16) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  return last;
}

/**
 * Runs `etcdctl watch --prefix` in its own process, printing to a file (a
 * pipe this busy test process reads late would throttle it); `puts()` counts
 * the events printed so far.
 */
async function etcdctlWatch(endpoint: string, prefix: string) {
  const out = await Deno.makeTempFile();
  const file = await Deno.open(out, { write: true });
  const child = new Deno.Command("bash", {
    args: ["-c", `exec etcdctl --endpoints=${endpoint} watch --prefix ${prefix} >${out}`],
    env: { ETCDCTL_API: "3" },
    stdout: "null",
    stderr: "null",
  }).spawn();
  file.close();
  let exited = "running";
  child.status.then((s) => exited = `exited with ${s.code}`);
  return {
    state: () => exited,
    async puts(): Promise<number> {
      const text = await Deno.readTextFile(out);
      return text.split("\n").filter((l) => l === "PUT").length;
    },
    async stop() {
      try {
        child.kill();
      } catch {
        // already ended
      }
      await child.status;
      await Deno.remove(out);
    },
  };
}

conformance(
  "§34 a watcher that stops reading is canceled after bounded memory; the others never wait",
  async (k, backend) => {
    // The stuck client never sends WINDOW_UPDATE, so the server can send it
    // 64 KiB and must hold the rest. Past the connection's budget
    // (--max-unread-bytes, 16 MiB here; ~33 MB are written) its watch is
    // canceled once it has taken nothing for 2 s.
    // The cut-off is the front end's, the same on every backend: it runs on
    // the two fast ones. A reading watcher (etcdctl, its own process) gets every
    // event without waiting for it, and once the stuck client opens its
    // window it gets what was held, gap-free, then the cancel, last.
    const N = 32_000;
    const port = Number(k.endpoint.split(":")[1]);
    const stuck = await RawH2.connect(port);
    const fast = await etcdctlWatch(k.endpoint, "/slow/");
    try {
      await stuck.call(1, "Watch/Watch", {
        create_request: { key: b("/slow/"), range_end: b("/slow0") },
      }, false);
      await stuck.until(() => stuck.messages(1, "Watch/Watch").length > 0, 5000, "watch created");
      // etcdctl's watch is created, and the stuck client has taken nothing for
      // the stall time (2 s): from now on only the budget decides when it is cut.
      await sleep(2500);
      const t0 = performance.now();
      const last = await writeMany(k, backend, "/slow/", N);
      const written = performance.now();
      const deadline = Date.now() + 20_000;
      let seen = 0;
      while ((seen = await fast.puts()) < N && Date.now() < deadline) await sleep(200);
      const lag = performance.now() - written;
      console.log(
        `${N} events written in ${Math.round(written - t0)} ms; ` +
          `the reading watcher had them all ${Math.round(lag)} ms after the last ack`,
      );
      assert.equal(seen, N, `events the reading watcher printed (etcdctl ${fast.state()})`);
      assert.ok(lag < 5000, `reading watcher lagged ${lag} ms`);
      assert.ok(last > 0);

      await stuck.windowUpdate(0, 2 ** 30);
      await stuck.windowUpdate(1, 2 ** 30);
      await stuck.until(
        () => stuck.messages(1, "Watch/Watch").some((r) => r.canceled),
        10_000,
        "the stuck watch's cancel",
      );
      await sleep(100);
      const responses = stuck.messages(1, "Watch/Watch");
      const end = responses[responses.length - 1];
      assert.ok(end.canceled, "the cancel is the last response");
      assert.match(end.cancel_reason, /slow/);
      const ev = responses.flatMap((r) => r.events);
      const r = revs(ev);
      for (let i = 1; i < r.length; i++) assert.equal(r[i], r[i - 1] + 1, "gap in the slow watch");
      assert.ok(ev.length < N, `all ${N} events were held: nothing was cut off`);
      // What was held for it stayed near the budget (16 MiB; ~1 KiB per event).
      assert.ok(ev.length * 1024 < 22 * 1024 * 1024, `${ev.length} events were held`);
      console.log(`the stuck watcher was canceled after ${ev.length} events`);
    } finally {
      stuck.close();
      await fast.stop();
    }
  },
  { maxUnreadBytes: 16 << 20 },
  (backend) => backend.name === "sqlite" || backend.name === "memory",
);

conformance(
  "a reading client catching up more than 20,000 events of history is not canceled",
  async (k, backend) => {
    const N = 30_000;
    await writeMany(k, backend, "/hist/", N);
    await streams(k, 1, async (w) => {
      const id = (await w.watch({ key: "/hist/", rangeEnd: "/hist0", startRevision: 3 })).watch_id;
      await w.waitFor(
        (r) => r.canceled || w.events(id).length >= N,
        15_000,
        0,
        "all history or a cancel",
      );
      const c = w.responses.find((r) => r.canceled);
      assert.equal(
        c,
        undefined,
        `canceled (${c?.cancel_reason}) after ${w.events(id).length} of ${N} events`,
      );
      assert.equal(w.events(id).length, N);
    });
  },
);

/** Collects a child's stdout as text while it runs. */
function collect(child: Deno.ChildProcess): { text: () => string; done: Promise<void> } {
  let out = "";
  const dec = new TextDecoder();
  const done = (async () => {
    for await (const chunk of child.stdout) out += dec.decode(chunk, { stream: true });
  })();
  return { text: () => out, done };
}

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

conformance(
  "etcdctl watch --prefix --rev=N --prev-kv: history from N, then live events",
  async (k) => {
    await put(k, "/e/a", "1");
    const r4 = await put(k, "/e/b", "2");
    await put(k, "/x", "0");
    const child = new Deno.Command("etcdctl", {
      args: [`--endpoints=${k.endpoint}`, "watch", "--prefix", "/e/", `--rev=${r4}`, "--prev-kv"],
      env: { ETCDCTL_API: "3" },
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    const out = collect(child);
    try {
      await until(() => out.text().includes("/e/b\n2\n"), 5000, "the replayed event");
      await put(k, "/e/a", "3");
      await del(k, "/e/b");
      await put(k, "/e/c", "4");
      await until(() => out.text().includes("/e/c\n4\n"), 5000, "the live events");
    } finally {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await out.done;
    }
    assert.equal(
      out.text(),
      "PUT\n/e/b\n2\n" +
        "PUT\n/e/a\n1\n/e/a\n3\n" +
        "DELETE\n/e/b\n2\n/e/b\n\n" +
        "PUT\n/e/c\n4\n",
    );
  },
);

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
