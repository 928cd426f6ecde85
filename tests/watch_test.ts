/**
 * The Watch service over gRPC: start revisions, ids, cancels, key ranges, event
 * shapes and bursts (spec §2.7, §5 and §13 items 25–31). Writers under load,
 * progress and slow clients are in watch_load_test.ts; compaction as watchers see
 * it in watch_compact_test.ts.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { value } from "./helpers/watch.ts";
import {
  assertHeadersCoverEvents,
  assertMonotonic,
  COMPACTED,
  del,
  keys,
  put,
  revs,
  sleep,
  streams,
  writeAll,
} from "./helpers/watch_cases.ts";

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
