/**
 * The workloads, coordinator side: each starts a server, drives the load
 * generator's jobs against it, measures the server from outside and returns
 * {@link Sample}s for the table.
 */
import { type EtcdStore, etcdStore, spawnEtcd } from "./etcd.ts";
import { spawnKine } from "./kine.ts";
import type { LoadGen } from "./loadgen.ts";
import { type DaemonMetrics, delta, type PromHistogram, scrape } from "./metrics.ts";
import { HealthProbe } from "./probe.ts";
import { cpuSeconds, memory, RssSampler } from "./procfs.ts";
import { Conn } from "./rpc.ts";
import { type Server, waitForRange } from "./server.ts";
import { Histogram, type HistogramData, Histograms } from "./stats.ts";

/** A server under test. */
export interface Backend {
  /** `etcd`, `kine-sqlite`, `kine-memory`. */
  name: string;
  kind: "etcd" | "sqlite" | "memory";
}

/** One measured run of one workload against one server. */
export interface Sample {
  workload: string;
  server: string;
  /** Wall seconds of the measured phase. */
  wallS: number;
  /** Latency per operation type (for listings and cold start: time per listing / start). */
  ops: Record<string, HistogramData>;
  /** False when op counts are not a throughput (listings, cold start). */
  rate: boolean;
  writes: number;
  serverCpuS: number;
  loadgenCpuS: number;
  /** VmHWM of the server at the end, bytes. */
  peakRss: number;
  /** VmRSS sampled every 100 ms during the measured phase, bytes. */
  rss: { peak: number; last: number };
  health?: HistogramData;
  /** Our daemon only: its `kine_event_loop_delay_seconds` observed during the measured phase. */
  loopDelay?: PromHistogram;
  /** Our daemon only: its `kine_txn_batch_size` observed during the measured phase. */
  batchSize?: PromHistogram;
  /** Watch delivery latency: put acknowledged → event received (0 if the event came first). */
  delivery?: HistogramData;
  /** Watch delivery latency: put sent → event received. */
  deliverySent?: HistogramData;
  errors: Record<string, number>;
  notes: string[];
  /** What the prefix watchers of the kube mix saw, against the acknowledged writes. */
  watchCheck?: { watchers: number; writes: number; problems: string[] };
}

/** Workload sizes; `--quick` shrinks them. */
export interface Sizes {
  kube: { ms: number; preload: number; loops: number; conns: number; watchers: number };
  lease: { ms: number; clients: number };
  sweep: { ms: number; levels: number[] };
  list: { total: number; small: number; valueSize: number };
  idle: { ms: number; watchers: number; perStream: number; rate: number };
}

/** Sizes of a full run. */
export const FULL: Sizes = {
  kube: { ms: 8000, preload: 5000, loops: 64, conns: 4, watchers: 4 },
  lease: { ms: 5000, clients: 100 },
  sweep: { ms: 3000, levels: [8, 32, 128, 512] },
  list: { total: 100_000, small: 10_000, valueSize: 512 },
  idle: { ms: 10_000, watchers: 1000, perStream: 25, rate: 1000 },
};

/** Sizes of a smoke run. */
export const QUICK: Sizes = {
  kube: { ms: 500, preload: 1000, loops: 64, conns: 4, watchers: 4 },
  lease: { ms: 500, clients: 100 },
  sweep: { ms: 500, levels: [128] },
  list: { total: 10_000, small: 1000, valueSize: 512 },
  idle: { ms: 1000, watchers: 100, perStream: 25, rate: 200 },
};

/** What a workload run needs. */
export interface RunContext {
  backend: Backend;
  /** CPU list for servers (`taskset -c`), unset when unpinned. */
  serverCpus?: string;
  loadgen: LoadGen;
  sizes: Sizes;
  /** Directory for stores and logs of this run. */
  tmp: string;
  kineMain: string;
  /** The large store of each backend, kept between rounds and modes. */
  bigStores: Map<string, Store>;
}

/** Where a server keeps its data. */
export interface Store {
  dir: string;
  etcd?: EtcdStore;
}

let serial = 0;

async function newStore(ctx: RunContext): Promise<Store> {
  const dir = `${ctx.tmp}/${ctx.backend.name}-${++serial}`;
  await Deno.mkdir(dir, { recursive: true });
  return { dir, etcd: ctx.backend.kind === "etcd" ? etcdStore(`${dir}/data`) : undefined };
}

/** Spawns the backend's server on `store` and waits for a Range; returns it and the ms taken. */
async function start(ctx: RunContext, store: Store): Promise<{ server: Server; coldMs: number }> {
  const log = `${store.dir}/server.log`;
  const t0 = performance.now();
  const server = store.etcd ? spawnEtcd(store.etcd, ctx.serverCpus, log) : spawnKine(
    `kine-${ctx.backend.kind}`,
    ctx.backend.kind === "sqlite" ? `sqlite://${store.dir}/state.db` : "memory://",
    ctx.serverCpus,
    log,
    ctx.kineMain,
  );
  try {
    return { server, coldMs: await waitForRange(server, t0) };
  } catch (err) {
    await server.stop();
    throw err;
  }
}

/** A fresh store and server for one run; stopped and removed after `fn`. */
async function withFreshServer(
  ctx: RunContext,
  fn: (server: Server) => Promise<Sample[]>,
): Promise<Sample[]> {
  const store = await newStore(ctx);
  const { server } = await start(ctx, store);
  try {
    return await fn(server);
  } finally {
    await server.stop();
    await Deno.remove(store.dir, { recursive: true }).catch(() => {});
  }
}

/** Runs `load` while measuring the server from outside; returns a partial sample. */
async function measure<T>(
  ctx: RunContext,
  server: Server,
  load: () => Promise<T>,
): Promise<{ result: T; sample: Sample }> {
  const probe = new HealthProbe(server.target);
  const rss = new RssSampler(server.pid);
  const cpu0 = cpuSeconds(server.pid);
  const lg0 = ctx.loadgen.cpuSeconds();
  const issues0 = new Map(server.log.issues);
  const metrics0 = await scrape(server.metricsUrl);
  const t0 = performance.now();
  let result: T;
  let metrics1: DaemonMetrics | undefined;
  // The scrape after the load is not counted in the wall time.
  let scrapeMs = 0;
  try {
    result = await load();
    const s0 = performance.now();
    metrics1 = metrics0 && await scrape(server.metricsUrl);
    scrapeMs = performance.now() - s0;
  } finally {
    rss.stop();
    await probe.stop();
  }
  const sample: Sample = {
    workload: "",
    server: server.name,
    wallS: (performance.now() - t0 - scrapeMs) / 1000,
    ops: {},
    rate: true,
    writes: 0,
    serverCpuS: cpuSeconds(server.pid) - cpu0,
    loadgenCpuS: ctx.loadgen.cpuSeconds() - lg0,
    peakRss: memory(server.pid).hwm,
    rss: { peak: rss.peak, last: rss.last },
    health: probe.latency.toJSON(),
    loopDelay: delta(metrics1?.loopDelay, metrics0?.loopDelay),
    batchSize: delta(metrics1?.batchSize, metrics0?.batchSize),
    errors: {},
    notes: [],
  };
  for (const [issue, n] of server.log.issues) {
    const delta = n - (issues0.get(issue) ?? 0);
    if (delta > 0) sample.errors[`server log: ${issue}`] = delta;
  }
  if (probe.failures) sample.errors["health probe failed"] = probe.failures;
  return { result, sample };
}

/** Splits `total` into `k` near-equal parts; part `i`. */
const share = (total: number, k: number, i: number) =>
  Math.floor(total / k) + (i < total % k ? 1 : 0);

/** Merges job results (histograms, errors, writes) into a sample. */
function absorb(sample: Sample, results: { hist?: any; errors?: any; writes?: number }[]): void {
  const h = new Histograms().merge(sample.ops);
  for (const r of results) {
    if (r.hist) h.merge(r.hist);
    sample.writes += r.writes ?? 0;
    for (const [m, n] of Object.entries<number>(r.errors?.counts ?? {})) {
      sample.errors[m] = (sample.errors[m] ?? 0) + n;
    }
  }
  sample.ops = h.toJSON();
}

/** Preloads keys `0..count-1` of `set`, split over the workers. */
function preload(
  ctx: RunContext,
  server: Server,
  set: "kube" | "list",
  count: number,
  valueSize: number,
): Promise<{ writes: number; hist: any }[]> {
  const k = ctx.loadgen.size;
  return ctx.loadgen.all("preload", (i) => {
    const from = Math.floor((count * i) / k);
    return {
      target: server.target,
      set,
      from,
      to: Math.floor((count * (i + 1)) / k),
      small: ctx.sizes.list.small,
      valueSize,
      batch: 100,
      concurrency: 4,
    };
  });
}

/** Runs the kube mix and puts briefly against `ctx.backend` so every worker's JIT is warm. */
export async function warmUp(ctx: RunContext): Promise<void> {
  const k = ctx.loadgen.size;
  await withFreshServer(ctx, async (server) => {
    await ctx.loadgen.all("kube", (i) => ({
      target: server.target,
      worker: i,
      conns: 1,
      loops: 8,
      durationMs: 1500,
      namespaces: 50,
      valueSize: 2048,
    }));
    await ctx.loadgen.all("puts", (i) => ({
      target: server.target,
      conns: 2,
      concurrency: share(128, k, i),
      durationMs: 1000,
      lease: 0,
      valueSize: 256,
      prefix: "/warm/",
    }));
    return [];
  });
}

/**
 * (1) kube-apiserver-like mix with 4 prefix watchers on /registry/ that must
 * see every acknowledged write exactly once.
 */
export function kubeMix(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.kube;
  const k = ctx.loadgen.size;
  return withFreshServer(ctx, async (server) => {
    await preload(ctx, server, "kube", z.preload, 2048);
    const watchJobs = Array.from({ length: k }, (_, i) =>
      ctx.loadgen.run(i, "watchers", {
        target: server.target,
        prefix: "/registry/",
        count: share(z.watchers, k, i),
      }));
    await Promise.all(watchJobs.map((j) => j.ready));
    const { result, sample } = await measure(ctx, server, () =>
      ctx.loadgen.all("kube", (i) => ({
        target: server.target,
        worker: i,
        conns: Math.max(1, share(z.conns, k, i)),
        loops: share(z.loops, k, i),
        durationMs: z.ms,
        namespaces: 50,
        valueSize: 2048,
      })));
    const expected = new Set<number>(result.flatMap((r) => r.revisions));
    const untilRevision = Math.max(0, ...expected);
    for (const j of watchJobs) j.stop({ untilRevision });
    const watched = await Promise.all(watchJobs.map((j) => j.done));
    sample.workload = `kube mix (${z.loops} workers, 2 KiB, ${z.preload} preloaded)`;
    absorb(sample, [...result, ...watched]);
    const conflicts = result.reduce((n, r) => n + r.conflicts, 0);
    if (conflicts) sample.errors["txn compare failed (unexpected conflict)"] = conflicts;
    const watchers = watched.flatMap((w) => w.watchers);
    sample.watchCheck = {
      watchers: watchers.length,
      writes: expected.size,
      problems: verifyWatchers(expected, watchers),
    };
    return [sample];
  });
}

/** Compares what each watcher saw with the acknowledged write revisions; lists problems. */
function verifyWatchers(
  expected: Set<number>,
  watchers: { revisions: number[]; events: number; duplicates: number; missingPrevKv: number }[],
): string[] {
  const problems: string[] = [];
  watchers.forEach((w, i) => {
    const seen = new Set(w.revisions);
    let missing = 0;
    for (const r of expected) if (!seen.has(r)) missing++;
    const extra = w.revisions.filter((r) => !expected.has(r)).length;
    const bad = [
      missing && `${missing} missed`,
      w.duplicates && `${w.duplicates} duplicated`,
      extra && `${extra} unacknowledged`,
      w.missingPrevKv && `${w.missingPrevKv} without prev_kv`,
    ].filter(Boolean);
    if (bad.length) problems.push(`watcher ${i + 1}: ${bad.join(", ")}`);
  });
  return problems;
}

/** (2) Puts of random keys with one shared lease from many clients (`etcdctl check perf`-like). */
export function leasePuts(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.lease;
  const k = ctx.loadgen.size;
  return withFreshServer(ctx, async (server) => {
    const conn = new Conn(server.target);
    const id = 1 + Math.floor(Math.random() * 2 ** 31);
    const lease = (await conn.leaseGrant(3600, id).finally(() => conn.close())).ID;
    const { result, sample } = await measure(ctx, server, () =>
      ctx.loadgen.all("puts", (i) => ({
        target: server.target,
        conns: share(z.clients, k, i),
        concurrency: share(z.clients, k, i),
        durationMs: z.ms,
        lease,
        valueSize: 256,
        prefix: "/perf/",
      })));
    sample.workload = `lease puts (${z.clients} clients, 256 B)`;
    absorb(sample, result);
    return [sample];
  });
}

/** Put throughput as in-flight requests rise: shows where the server, not the load, limits. */
export function putSweep(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.sweep;
  const k = ctx.loadgen.size;
  return withFreshServer(ctx, async (server) => {
    const samples = [];
    for (const c of z.levels) {
      const { result, sample } = await measure(ctx, server, () =>
        ctx.loadgen.all("puts", (i) => ({
          target: server.target,
          conns: Math.min(2, Math.max(1, share(c, k, i))),
          concurrency: share(c, k, i),
          durationMs: z.ms,
          lease: 0,
          valueSize: 256,
          prefix: "/sweep/",
        })));
      sample.workload = `put sweep: ${c} in flight`;
      absorb(sample, result);
      samples.push(sample);
    }
    return samples;
  });
}

const count = (n: number) => n >= 1000 ? `${n / 1000}k` : String(n);

/**
 * (3) Full listings of a large store and (5) cold start on it. The store is
 * loaded once per backend (kept across rounds; memory:// is reloaded each time).
 */
export async function bigStore(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.list;
  const samples: Sample[] = [];
  const persistent = ctx.backend.kind !== "memory";
  let store = persistent ? ctx.bigStores.get(ctx.backend.name) : undefined;
  let running: Server | undefined;
  try {
    if (!store) {
      store = await newStore(ctx);
      running = (await start(ctx, store)).server;
      const server = running;
      const { result, sample } = await measure(
        ctx,
        server,
        () => preload(ctx, server, "list", z.total, z.valueSize),
      );
      sample.workload = `bulk load ${count(z.total)} keys (txns of 100 puts, 512 B)`;
      absorb(sample, result);
      samples.push(sample);
      if (persistent) {
        ctx.bigStores.set(ctx.backend.name, store);
        await running.stop();
        running = undefined;
      }
    }
    let coldMs: number | undefined;
    if (!running) ({ server: running, coldMs } = await start(ctx, store));
    const server = running;
    if (coldMs !== undefined) {
      const coldCpuS = cpuSeconds(server.pid);
      const coldHwm = memory(server.pid).hwm;
      // Everything the daemon observed from its start to the first Range answered.
      const startup = await scrape(server.metricsUrl);
      const h = new Histogram();
      h.add(coldMs);
      samples.push({
        workload: `cold start on ${count(z.total)} keys (spawn → first Range)`,
        server: server.name,
        wallS: coldMs / 1000,
        ops: { "start": h.toJSON() },
        rate: false,
        writes: 0,
        serverCpuS: coldCpuS,
        loadgenCpuS: 0,
        peakRss: coldHwm,
        rss: { peak: 0, last: 0 },
        loopDelay: startup?.loopDelay,
        errors: {},
        notes: startup?.loopDelay ? ["event-loop delay: daemon start → first Range"] : [],
      });
    }
    const small = count(z.small);
    const all = count(z.total);
    const { result, sample } = await measure(ctx, server, () =>
      ctx.loadgen.run(0, "listings", {
        target: server.target,
        reps: 1,
        listings: [
          { name: `list ${small} paged`, prefix: "/list/small/", mode: "paged", expect: z.small },
          {
            name: `list ${small} unpaged`,
            prefix: "/list/small/",
            mode: "unpaged",
            expect: z.small,
          },
          { name: `list ${all} paged`, prefix: "/list/", mode: "paged", expect: z.total },
          { name: `list ${all} unpaged`, prefix: "/list/", mode: "unpaged", expect: z.total },
          { name: `count ${all}`, prefix: "/list/", mode: "count", expect: z.total },
        ],
      }).done);
    sample.workload = `list ${small} / ${all} keys (limit 500 and unpaged, 512 B)`;
    sample.rate = false;
    absorb(sample, [result]);
    samples.push(sample);
  } finally {
    await running?.stop();
    if (store && !persistent) await Deno.remove(store.dir, { recursive: true }).catch(() => {});
  }
  return samples;
}

/**
 * (4) Idle single-key watchers plus a steady write rate on a few watched
 * prefixes: watch delivery latency and server memory.
 */
export function idleWatchers(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.idle;
  const k = ctx.loadgen.size;
  return withFreshServer(ctx, async (server) => {
    const streams = Math.ceil(z.watchers / z.perStream);
    const idle = Array.from({ length: k }, (_, i) =>
      ctx.loadgen.run(i, "idleWatchers", {
        target: server.target,
        worker: i,
        streams: share(streams, k, i),
        perStream: z.perStream,
      }));
    await Promise.all(idle.map((j) => j.ready));
    const { result, sample } = await measure(
      ctx,
      server,
      () =>
        ctx.loadgen.all("hotWrites", (i) => ({
          target: server.target,
          worker: i,
          rate: z.rate / k,
          durationMs: z.ms,
          valueSize: 256,
        })),
    );
    for (const j of idle) j.stop();
    const idleResults = await Promise.all(idle.map((j) => j.done));
    sample.workload = `${streams * z.perStream} idle watchers + ${z.rate} puts/s`;
    absorb(sample, [...result, ...idleResults]);
    const delivery = new Histogram();
    const deliverySent = new Histogram();
    for (const r of result) {
      delivery.merge(r.delivery);
      deliverySent.merge(r.deliverySent);
    }
    sample.delivery = delivery.toJSON();
    sample.deliverySent = deliverySent.toJSON();
    const missed = result.reduce((n, r) => n + r.missedEvents, 0);
    const stray = idleResults.reduce((n, r) => n + r.events, 0);
    if (missed) sample.errors["hot watcher: events never delivered"] = missed;
    if (stray) sample.errors["idle watcher: unexpected events"] = stray;
    const early = result.reduce((n, r) => n + r.eventsBeforeAck, 0);
    sample.notes.push(`RSS at end ${(sample.rss.last / 2 ** 20).toFixed(0)} MiB`);
    if (early) {
      const pct = Math.round((early / sample.writes) * 100);
      sample.notes.push(`${pct}% of events arrived before their put's response (counted as 0)`);
    }
    return [sample];
  });
}
