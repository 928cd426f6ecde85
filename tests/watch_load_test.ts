/**
 * Watches under load: concurrent writers, progress notifications and requests,
 * a client that stops reading, a long catch-up, and etcdctl watch (spec §13
 * items 32–34).
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import type { TestBackend } from "./helpers/backends.ts";
import type { TestKine } from "./helpers/kine.ts";
import { conformance } from "./helpers/conformance.ts";
import { brief, key, value, type WatchResponse } from "./helpers/watch.ts";
import { RawH2 } from "./helpers/h2raw.ts";
import {
  assertHeadersCoverEvents,
  assertMonotonic,
  del,
  put,
  revs,
  sleep,
  streams,
  until,
  writeAll,
} from "./helpers/watch_cases.ts";

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
