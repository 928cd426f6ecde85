/**
 * The NATS backend with more than one party: a private nats-server killed and
 * restarted under a bounded write load, and two kine processes on one bucket.
 */
import assert from "node:assert/strict";
import { b, connect, s } from "./helpers/client.ts";
import { type Child, spawnKine } from "./helpers/daemon.ts";
import { startTestKine } from "./helpers/kine.ts";
import { bucketFor, deleteBucket, SHARED_NATS } from "./helpers/nats.ts";
import { WatchClient } from "./helpers/watch.ts";

const UNAVAILABLE = 14;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, ok: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A free loopback port (bound once to find it, then released). */
function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function listening(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** A private `nats-server -js` on `port` with its store in `dir`. */
async function startNats(port: number, dir: string): Promise<Deno.ChildProcess> {
  let server: Deno.ChildProcess;
  try {
    server = new Deno.Command("nats-server", {
      args: ["-a", "127.0.0.1", "-p", String(port), "-js", "-sd", dir],
      stdout: "null",
      stderr: "null",
    }).spawn();
  } catch (err) {
    throw new Error(`cannot run nats-server (Debian package nats-server): ${err}`);
  }
  const deadline = Date.now() + 10_000;
  while (!(await listening(port))) {
    if (Date.now() > deadline) throw new Error("nats-server did not start");
    await sleep(50);
  }
  return server;
}

/** Events of one watch in arrival order: mod revision and key. */
function seen(w: WatchClient, id: number): { rev: number; key: string }[] {
  return w.events(id).map((e: any) => ({ rev: Number(e.kv.mod_revision), key: s(e.kv.key) }));
}

function assertOnceInOrder(events: { rev: number }[], what: string): void {
  for (let i = 1; i < events.length; i++) {
    assert.ok(
      events[i].rev > events[i - 1].rev,
      `${what}: ${events[i].rev} after ${events[i - 1].rev}`,
    );
  }
}

Deno.test("NATS restart under write load: no acknowledged write lost, each event seen once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-nats-restart-" });
  const port = freePort();
  let server = await startNats(port, dir);
  const k = await startTestKine({ endpoint: `nats://127.0.0.1:${port}?bucket=restart` });
  const watcher = new WatchClient(k.endpoint, true);
  try {
    const id = (await watcher.watch({ key: "/load/", rangeEnd: "/load0" })).watch_id;
    const acked = new Map<number, string>();
    let unavailable = 0;
    let slowest = 0;
    /** The longest write that succeeded: one sent while the server was down waits for it. */
    let longestOk = 0;
    let ackedAfterRestart = 0;
    let restarted = false;
    const started = Date.now();
    const writer = (async () => {
      // Bounded: 400 writes or 40 s, whichever comes first.
      for (let i = 0; i < 400 && Date.now() - started < 40_000; i++) {
        const key = `/load/${i % 50}`;
        const t0 = performance.now();
        try {
          const r = await k.client.kv.put({ key: b(key), value: b(String(i)) });
          acked.set(Number(r.header.revision), key);
          longestOk = Math.max(longestOk, performance.now() - t0);
          if (restarted) ackedAfterRestart++;
        } catch (err: any) {
          slowest = Math.max(slowest, performance.now() - t0);
          assert.equal(err.code, UNAVAILABLE, String(err));
          unavailable++;
          await sleep(200);
        }
      }
    })();
    await until("100 acknowledged writes", () => acked.size >= 100);
    server.kill("SIGKILL");
    await server.status;
    await sleep(1500);
    server = await startNats(port, dir);
    restarted = true;
    await writer;
    // A write in flight when the server died fails after the publish's timeout; one sent while it
    // was down is held by the client, sent once it is back, and succeeds then (the outage is 1.5 s).
    assert.ok(
      unavailable > 0 || longestOk >= 1000,
      `a write during the outage failed or waited for the restart (longest success ${
        Math.round(longestOk)
      } ms)`,
    );
    assert.ok(slowest < 15_000, `a failing write took ${Math.round(slowest)} ms`);
    assert.ok(ackedAfterRestart > 0, "writes succeed again after the restart");
    const last = Math.max(...acked.keys());
    await until("the watcher to reach the last write", () => {
      const events = seen(watcher, id);
      return events.length > 0 && events[events.length - 1].rev >= last;
    });
    const events = seen(watcher, id);
    assertOnceInOrder(events, "watch after a server restart");
    const byRev = new Map(events.map((e) => [e.rev, e.key]));
    for (const [rev, key] of acked) assert.equal(byRev.get(rev), key, `event of revision ${rev}`);
    // Every acknowledged write is stored: each key is at least as new as its last ack.
    const all = await k.client.kv.range({ key: b("/load/"), range_end: b("/load0") });
    const stored = new Map<string, number>(
      all.kvs.map((kv: any) => [s(kv.key), Number(kv.mod_revision)]),
    );
    for (const [rev, key] of acked) assert.ok((stored.get(key) ?? 0) >= rev, `${key}@${rev} lost`);
  } finally {
    await watcher.close();
    await k.close();
    server.kill("SIGTERM");
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
});

/** Two kine processes (`main.ts`) on a fresh bucket of the shared server, one after the other. */
async function twoOnOneBucket(): Promise<{ kines: Child[]; close(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "kine-nats-two-" });
  const bucket = bucketFor(dir);
  const args = [
    "--endpoint",
    `nats://${SHARED_NATS}?bucket=${bucket}`,
    "--listen-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
  ];
  const kines: Child[] = [];
  const close = async () => {
    for (const k of kines) await k.stop();
    await deleteBucket(bucket);
    await Deno.remove(dir, { recursive: true });
  };
  try {
    for (let i = 0; i < 2; i++) kines.push(await spawnKine(dir, args));
  } catch (err) {
    await close();
    throw err;
  }
  return { kines, close };
}

Deno.test("two kine processes on one bucket: every watcher sees every write once, in order", async () => {
  const { kines, close } = await twoOnOneBucket();
  const clients = kines.map((c) => connect(c.target));
  const watchers = kines.map((c) => new WatchClient(c.target, true));
  try {
    const ids = await Promise.all(
      watchers.map(async (w) => (await w.watch({ key: "/two/", rangeEnd: "/two0" })).watch_id),
    );
    const acked = new Set<number>();
    // Each process: 100 puts of its own keys, and 20 compare-and-swap increments of one counter.
    const increment = async (c: ReturnType<typeof connect>) => {
      for (;;) {
        const cur = (await c.kv.range({ key: b("/two/counter") })).kvs[0];
        const n = cur ? Number(s(cur.value)) : 0;
        const r = await c.kv.txn({
          compare: [{
            key: b("/two/counter"),
            target: "MOD",
            result: "EQUAL",
            mod_revision: cur ? cur.mod_revision : 0,
          }],
          success: [{ request_put: { key: b("/two/counter"), value: b(String(n + 1)) } }],
          failure: [],
        });
        if (r.succeeded) return acked.add(Number(r.header.revision));
      }
    };
    await Promise.all(clients.map(async (c, p) => {
      for (let i = 0; i < 100; i++) {
        const r = await c.kv.put({ key: b(`/two/${p}/${i % 10}`), value: b(String(i)) });
        acked.add(Number(r.header.revision));
        if (i % 5 === 0) await increment(c);
      }
    }));
    const counter = (await clients[1].kv.range({ key: b("/two/counter") })).kvs[0];
    assert.equal(s(counter.value), "40", "no increment lost between the processes");
    const last = Math.max(...acked);
    for (const [i, w] of watchers.entries()) {
      await until(
        `watcher ${i} to reach ${last}`,
        () => seen(w, ids[i]).some((e) => e.rev >= last),
      );
    }
    const [a, z] = watchers.map((w, i) => seen(w, ids[i]));
    assertOnceInOrder(a, "watcher on process 1");
    assert.deepEqual(z, a, "both processes deliver the same events in the same order");
    assert.equal(a.length, acked.size);
    assert.deepEqual(new Set(a.map((e) => e.rev)), acked);
  } finally {
    for (const w of watchers) await w.close();
    for (const c of clients) c.close();
    await close();
  }
});

Deno.test("two kine processes on one bucket: a lease granted and kept alive on one holds on both", async () => {
  // B starts first, so the lease A grants later is one B never loaded.
  const { kines: [b_, a], close } = await twoOnOneBucket();
  const [ca, cb] = [connect(a.target), connect(b_.target)];
  let keepAlive: Deno.ChildProcess | undefined;
  try {
    const id = (await ca.lease.leaseGrant({ TTL: 2 })).ID;
    await ca.kv.put({ key: b("/ls/k"), value: b("v"), lease: id });
    keepAlive = new Deno.Command("etcdctl", {
      args: [`--endpoints=${a.target}`, "lease", "keep-alive", BigInt(id).toString(16)],
      env: { ETCDCTL_API: "3" },
      stdout: "null",
      stderr: "null",
    }).spawn();
    const exists = async () => (await cb.kv.range({ key: b("/ls/k") })).kvs.length === 1;
    // Kept alive on A for twice its TTL: B neither deletes it as unknown nor expires it early.
    const until4s = Date.now() + 4000;
    while (Date.now() < until4s) {
      assert.ok(await exists(), "the key of a live lease was deleted");
      await sleep(200);
    }
    keepAlive.kill("SIGTERM");
    await keepAlive.status;
    keepAlive = undefined;
    const stopped = Date.now();
    while (await exists()) {
      assert.ok(Date.now() - stopped < 5000, "the key outlived its lease");
      await sleep(100);
    }
  } finally {
    if (keepAlive) {
      keepAlive.kill("SIGTERM");
      await keepAlive.status;
    }
    ca.close();
    cb.close();
    await close();
  }
});

Deno.test("two kine processes on one bucket: LeaseLeases on one lists at once what the other granted and revoked", async () => {
  // Each listing reads every record through B's copy of the lease bucket after it has caught up
  // with the stream's last message, so a grant or revoke A answered is in it.
  const { kines: [a, b_], close } = await twoOnOneBucket();
  const [ca, cb] = [connect(a.target), connect(b_.target)];
  try {
    const listed = async () =>
      new Set((await cb.lease.leaseLeases({})).leases.map((l: any) => l.ID));
    const started = performance.now();
    for (let i = 0; i < 10; i++) {
      const id = (await ca.lease.leaseGrant({ TTL: 60 })).ID;
      assert.ok((await listed()).has(id), `round ${i}: a lease granted on A is not listed on B`);
      await ca.lease.leaseRevoke({ ID: id });
      assert.ok(!(await listed()).has(id), `round ${i}: a lease revoked on A is listed on B`);
    }
    // A listing is a stream info request and a wait, not a consumer made per call (which could
    // wait 30 s for a heartbeat).
    const took = performance.now() - started;
    console.log(`10 rounds: ${Math.round(took)} ms`);
    assert.ok(took < 15_000, `10 rounds took ${Math.round(took)} ms`);
  } finally {
    ca.close();
    cb.close();
    await close();
  }
});
