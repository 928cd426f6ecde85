/**
 * The metrics listener as an operator uses it: etcd's `/health` and `/readyz` from a datastore
 * round trip, etcd's store gauges, and no listener for an embedder that did not ask for one.
 */
import assert from "node:assert/strict";
import { Registry, serveMetrics } from "../lib/metrics/mod.ts";

Deno.test("/health and /readyz answer from a datastore round trip; etcd's store gauges", async () => {
  const { startKine } = await import("../lib/mod.ts");
  const { silentLogger } = await import("../lib/log/mod.ts");
  const dir = await Deno.makeTempDir({ prefix: "kine-health-" });
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    metricsBindAddress: "127.0.0.1:0",
    endpoint: `sqlite://${dir}/s.db`,
  }, silentLogger);
  const base = kine.metricsUrl!.replace("/metrics", "");
  try {
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 200);
    assert.match(health.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(await health.text(), '{"health":"true","reason":""}');
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(await ready.text(), "ok\n");

    const scrape = async () => await (await fetch(kine.metricsUrl!)).text();
    const value = (text: string, name: string) =>
      Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
    let text = await scrape();
    assert.equal(value(text, "etcd_server_has_leader"), 1);
    const size = value(text, "etcd_mvcc_db_total_size_in_bytes");
    assert.ok(size > 0, `size ${size}`);
    const inUse = value(text, "etcd_mvcc_db_total_size_in_use_in_bytes");
    assert.ok(inUse > 0 && inUse <= size, `in use ${inUse} of ${size}`);
    const keys = value(text, "etcd_debugging_mvcc_keys_total");
    const rev = value(text, "etcd_debugging_mvcc_current_revision");
    assert.equal(rev, kine.backend.currentRevision());
    assert.equal(value(text, "etcd_debugging_mvcc_compact_revision"), 0);
    await kine.backend.txn({
      compare: [],
      success: [{
        type: "put",
        key: "/h/a",
        value: new TextEncoder().encode("1"),
        lease: 0,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      }],
      failure: [],
    });
    text = await scrape();
    assert.equal(value(text, "etcd_debugging_mvcc_current_revision"), rev + 1);
    // keys are counted at most every 10 s: the count is the one read before the put
    assert.equal(value(text, "etcd_debugging_mvcc_keys_total"), keys);
  } finally {
    await kine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a datastore that does not answer in time: /health and /readyz 503, has_leader 0", async () => {
  const { LogBackend } = await import("../lib/backend/logstructured/backend.ts");
  const { MemoryStore } = await import("../lib/backend/memory/store.ts");
  const { storeMetrics } = await import("../lib/metrics/mod.ts");
  const { silentLogger } = await import("../lib/log/mod.ts");
  const real = new LogBackend(new MemoryStore(), { logger: silentLogger } as never);
  await real.start();
  // The store itself is real; its reads stall, as a database behind a dead network would.
  let stalled = false;
  const never = new Promise<never>(() => {});
  const backend = new Proxy(real, {
    get: (target, prop, receiver) => {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== "function") return v;
      return (...args: unknown[]) =>
        stalled && (prop === "range" || prop === "status") ? never : v.apply(target, args);
    },
  });
  const registry = new Registry();
  const store = storeMetrics(registry, backend, { timeoutMs: 100 });
  const srv = await serveMetrics({
    address: "127.0.0.1:0",
    registry,
    health: store.health,
    beforeScrape: store.refresh,
  });
  const base = srv.url.replace("/metrics", "");
  try {
    assert.equal(await (await fetch(`${base}/health`)).text(), '{"health":"true","reason":""}');
    stalled = true;
    const t0 = performance.now();
    const down = await fetch(`${base}/health`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), {
      health: "false",
      reason: "datastore read timed out after 100 ms",
    });
    assert.ok(performance.now() - t0 < 2000, "answered after the timeout, not later");
    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.equal(
      await notReady.text(),
      "[-]datastore failed: datastore read timed out after 100 ms\nreadyz check failed\n",
    );
    assert.match(await (await fetch(srv.url)).text(), /^etcd_server_has_leader 0$/m);
    stalled = false;
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.match(await (await fetch(srv.url)).text(), /^etcd_server_has_leader 1$/m);
  } finally {
    await srv.close();
    await real.close();
  }
});

Deno.test("startKine (the embedding API) opens no metrics listener unless asked", async () => {
  const { startKine } = await import("../lib/mod.ts");
  const { silentLogger } = await import("../lib/log/mod.ts");
  const base = { listenAddress: "127.0.0.1:0", endpoint: "memory://" };
  const quiet = await startKine(base, silentLogger);
  try {
    assert.equal(quiet.metricsUrl, undefined);
  } finally {
    await quiet.close();
  }
  const asked = await startKine({ ...base, metricsBindAddress: "127.0.0.1:0" }, silentLogger);
  try {
    assert.match(asked.metricsUrl ?? "", /^http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics$/);
    const res = await fetch(asked.metricsUrl!);
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    await asked.close();
  }
});

Deno.test("--metrics-enable-profiling: a CPU profile and a heap snapshot DevTools can open", async () => {
  const { startKine } = await import("../lib/mod.ts");
  const { silentLogger } = await import("../lib/log/mod.ts");
  const base = { listenAddress: "127.0.0.1:0", endpoint: "memory://" };
  const off = await startKine({ ...base, metricsBindAddress: "127.0.0.1:0" }, silentLogger);
  try {
    const r = await fetch(off.metricsUrl!.replace("/metrics", "/debug/pprof/heap"));
    await r.body?.cancel();
    assert.equal(r.status, 404, "no profiles without the flag");
  } finally {
    await off.close();
  }
  const kine = await startKine({
    ...base,
    metricsBindAddress: "127.0.0.1:0",
    metricsEnableProfiling: true,
  }, silentLogger);
  const pprof = kine.metricsUrl!.replace("/metrics", "/debug/pprof");
  try {
    const index = await fetch(`${pprof}/`);
    assert.match(await index.text(), /\/debug\/pprof\/profile\?seconds=N/);
    const busy = setInterval(() => JSON.stringify(Array.from({ length: 1000 }, (_, i) => i)), 1);
    const cpu = await fetch(`${pprof}/profile?seconds=0.5`);
    clearInterval(busy);
    assert.equal(cpu.status, 200);
    assert.match(cpu.headers.get("content-disposition") ?? "", /filename="kine\.cpuprofile"/);
    // Chrome's .cpuprofile: nodes with call frames, start/end times, samples and time deltas.
    const profile = await cpu.json();
    assert.ok(profile.nodes.length > 1 && profile.nodes[0].callFrame, "call tree");
    assert.ok(profile.endTime - profile.startTime >= 400_000, "about 0.5 s, in µs");
    assert.equal(profile.samples.length, profile.timeDeltas.length);
    assert.equal((await fetch(`${pprof}/profile?seconds=abc`)).status, 400);

    const heap = await fetch(`${pprof}/heap`);
    assert.equal(heap.status, 200);
    assert.match(heap.headers.get("content-disposition") ?? "", /filename="kine\.heapsnapshot"/);
    const snapshot = await heap.json();
    assert.ok(snapshot.snapshot.meta.node_fields.includes("self_size"), "V8 heap snapshot meta");
    assert.ok(snapshot.snapshot.node_count > 1000 && snapshot.nodes.length > 1000);
  } finally {
    await kine.close();
  }
});
