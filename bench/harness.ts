/**
 * The bench's frame, coordinator side: the backends and their sizes, a server
 * stack per workload (etcd, or kine on its store), and the measurement of one
 * phase from outside (throughput, latencies, CPU, memory, metrics) as a
 * {@link Sample} for the table.
 */
import { type Database, databaseName, type Engine } from "./databases.ts";
import { type EtcdStore, etcdStore, spawnEtcd } from "./etcd.ts";
import { spawnKine } from "./kine.ts";
import type { LoadGen } from "./loadgen.ts";
import {
  addInto,
  counterDelta,
  type DaemonMetrics,
  delta,
  type PromHistogram,
  scrape,
} from "./metrics.ts";
import { HealthProbe } from "./probe.ts";
import { PARTIAL } from "./summary.ts";
import { coreBusySeconds, cpuSeconds, RssSampler, treeCpuSeconds } from "./procfs.ts";
import {
  databaseMemory,
  type Server,
  type Stack,
  stackCpuSeconds,
  stackPeakRss,
  waitForRange,
} from "./server.ts";
import { type HistogramData, Histograms } from "./stats.ts";

/** Our backends the bench can run, in table order. */
export const KINE_BACKENDS = ["sqlite", "memory", "postgres", "mysql", "nats"] as const;
/** One of {@link KINE_BACKENDS}. */
export type KineBackend = (typeof KINE_BACKENDS)[number];

/** A server under test. */
export interface Backend {
  /** `etcd`, `kine-sqlite`, `kine-postgres`, ... */
  name: string;
  kind: "etcd" | KineBackend;
}

/** The private database server a backend needs, if any. */
export function engineOf(kind: Backend["kind"]): Engine | undefined {
  return kind === "postgres" || kind === "mysql" || kind === "nats" ? kind : undefined;
}

/** One measured run of one workload against one server stack. */
export interface Sample {
  workload: string;
  server: string;
  /** Wall seconds of the measured phase. */
  wallS: number;
  /** Seconds over which its ops count as a throughput, when shorter than the phase. */
  rateS?: number;
  /** Latency per operation type (for listings and cold start: time per listing / start). */
  ops: Record<string, HistogramData>;
  /** False when op counts are not a throughput (listings, cold start). */
  rate: boolean;
  writes: number;
  /** CPU of the whole stack: servers plus their database server. */
  serverCpuS: number;
  /** The database server's part of {@link serverCpuS}, where it has one. */
  databaseCpuS?: number;
  loadgenCpuS: number;
  /**
   * CPU that processes outside the bench used meanwhile: on the server's core
   * when pinned, anywhere when not (the machine may be shared).
   */
  otherCpuS?: number;
  /** VmHWM of the server processes at the end, summed, bytes. */
  peakRss: number;
  /** VmRSS of the server processes sampled every 100 ms during the measured phase, bytes. */
  rss: { peak: number; last: number };
  /** PSS of the database server's processes at the end of the phase, bytes. */
  databaseRss?: number;
  health?: HistogramData;
  /** Our daemon only: its `kine_event_loop_delay_seconds` observed during the measured phase. */
  loopDelay?: PromHistogram;
  /** Our daemon only: its `kine_txn_batch_size` observed during the measured phase. */
  batchSize?: PromHistogram;
  /** Our daemon only: `kine_gap_fill_total` by result during the measured phase. */
  gapFills?: Record<string, number>;
  /** Watch delivery latency: put acknowledged → event received (0 if the event came first). */
  delivery?: HistogramData;
  /** Watch delivery latency: put sent → event received. */
  deliverySent?: HistogramData;
  /** Bytes on disk the store grew by (data, indexes, WAL): after the load and after compaction. */
  disk?: { loaded: number; compacted?: number };
  /**
   * Values a workload reports besides latencies (what `etcdctl check perf`
   * printed, a difference of percentiles): one summary line each.
   */
  figures?: Record<string, number | string>;
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
  /** `maxMs` bounds the bulk load (a slow backend gets fewer keys). */
  list: { total: number; small: number; valueSize: number; maxMs: number };
  idle: { ms: number; watchers: number; perStream: number; rate: number };
  progress: { ms: number; rate: number; everyMs: number };
  /**
   * `maxMs` bounds the bulk load, the updates and the wait for compaction each
   * (a slow backend gets fewer objects).
   */
  scale: { objects: number; callers: number; statusCalls: number; maxMs: number };
  ha: { servers: number; ms: number; writers: number; rate: number };
  logins: { logins: number; conns: number };
  /** Keys loaded before the second memory reading; how long a server rests before each. */
  footprint: { keys: number; settleMs: number };
  /** `etcdctl check perf` loads to run; `maxMs` bounds each run (etcdctl's own is 60 s). */
  checkperf: { loads: string[]; maxMs: number };
  /** Keys of the large store; `maxMs` bounds its bulk load. */
  million: { keys: number; valueSize: number; maxMs: number; settleMs: number };
  /** Write-then-read pairs, bounded by `maxMs`. */
  freshness: { count: number; maxMs: number };
}

/** Sizes of a full run. */
export const FULL: Sizes = {
  kube: { ms: 8000, preload: 5000, loops: 64, conns: 4, watchers: 4 },
  lease: { ms: 5000, clients: 100 },
  sweep: { ms: 3000, levels: [8, 32, 128, 512] },
  list: { total: 100_000, small: 10_000, valueSize: 512, maxMs: 120_000 },
  idle: { ms: 10_000, watchers: 1000, perStream: 25, rate: 1000 },
  progress: { ms: 10_000, rate: 1000, everyMs: 100 },
  scale: { objects: 200_000, callers: 16, statusCalls: 200, maxMs: 60_000 },
  ha: { servers: 3, ms: 8000, writers: 64, rate: 1000 },
  logins: { logins: 1000, conns: 4 },
  footprint: { keys: 100_000, settleMs: 2000 },
  checkperf: { loads: ["l", "m"], maxMs: 150_000 },
  million: { keys: 1_000_000, valueSize: 128, maxMs: 240_000, settleMs: 2000 },
  freshness: { count: 1000, maxMs: 30_000 },
};

/** Sizes of a smoke run. */
export const QUICK: Sizes = {
  kube: { ms: 500, preload: 1000, loops: 64, conns: 4, watchers: 4 },
  lease: { ms: 500, clients: 100 },
  sweep: { ms: 500, levels: [128] },
  list: { total: 10_000, small: 1000, valueSize: 512, maxMs: 30_000 },
  idle: { ms: 1000, watchers: 100, perStream: 25, rate: 200 },
  progress: { ms: 1000, rate: 200, everyMs: 100 },
  scale: { objects: 2000, callers: 16, statusCalls: 20, maxMs: 30_000 },
  ha: { servers: 3, ms: 1000, writers: 16, rate: 200 },
  logins: { logins: 200, conns: 4 },
  footprint: { keys: 10_000, settleMs: 1000 },
  checkperf: { loads: ["s"], maxMs: 150_000 },
  million: { keys: 20_000, valueSize: 128, maxMs: 30_000, settleMs: 1000 },
  freshness: { count: 200, maxMs: 10_000 },
};

/** What a workload run needs. */
export interface RunContext {
  backend: Backend;
  /** CPU list for servers and their databases (`taskset -c`), unset when unpinned. */
  serverCpus?: string;
  /** CPU list of the load generator and of other clients the bench runs, unset when unpinned. */
  loadCpus?: string;
  loadgen: LoadGen;
  sizes: Sizes;
  /** Directory for stores and logs of this run. */
  tmp: string;
  kineMain: string;
  /** The private database server of this backend, running in this mode. */
  db?: Database;
  /** The large store of each backend, kept between rounds and modes. */
  bigStores: Map<string, Store>;
}

/** Where a server keeps its data. */
export interface Store {
  dir: string;
  /** Kine's endpoint for SQLite and memory (unset for etcd and network databases). */
  endpoint?: string;
  etcd?: EtcdStore;
  /** The database (or bucket) on the private database server. */
  dbName?: string;
  /** Keys a bulk load put in it (fewer than asked when it ran out of time). */
  keys?: number;
}

let serial = 0;

/** A new, empty store for the context's backend. */
export async function newStore(ctx: RunContext): Promise<Store> {
  const dir = `${ctx.tmp}/${ctx.backend.name}-${++serial}`;
  await Deno.mkdir(dir, { recursive: true });
  switch (ctx.backend.kind) {
    case "etcd":
      return { dir, etcd: etcdStore(`${dir}/data`) };
    case "sqlite":
      return { dir, endpoint: `sqlite://${dir}/state.db` };
    case "memory":
      return { dir, endpoint: "memory://" };
  }
  if (!ctx.db) throw new Error(`no ${ctx.backend.kind} server is running`);
  const dbName = databaseName(`bench_${ctx.backend.kind}_${serial}`);
  return { dir, dbName };
}

/** Removes a store's files (and its database on a private database server). */
export async function removeStore(ctx: RunContext, store: Store): Promise<void> {
  await Deno.remove(store.dir, { recursive: true }).catch(() => {});
  if (store.dbName) await ctx.db?.drop(store.dbName);
}

/**
 * Spawns `replicas` servers on `store` (several kine processes share it;
 * etcd is always one) and waits for each to answer a Range; returns the stack
 * and the ms the first took.
 */
export async function start(
  ctx: RunContext,
  store: Store,
  o: { replicas?: number; kineArgs?: string[] } = {},
): Promise<{ stack: Stack; coldMs: number }> {
  const servers: Server[] = [];
  const replicas = store.etcd ? 1 : o.replicas ?? 1;
  // A database server restarted for another mode listens on another port: ask it now.
  const endpoint = store.dbName ? ctx.db!.endpoint(store.dbName) : store.endpoint!;
  const spawnOne = () => {
    const log = `${store.dir}/server-${servers.length}.log`;
    const server = store.etcd
      ? spawnEtcd(store.etcd, ctx.serverCpus, log)
      : spawnKine(ctx.backend.name, endpoint, ctx.serverCpus, log, ctx.kineMain, o.kineArgs);
    servers.push(server);
    return server;
  };
  try {
    const t0 = performance.now();
    const coldMs = await waitForRange(spawnOne(), ctx.loadgen, t0);
    // The others start once the first has created the database and schema:
    // the bench measures serving, not a race to create them.
    const rest = Array.from({ length: replicas - 1 }, spawnOne);
    await Promise.all(rest.map((s) => waitForRange(s, ctx.loadgen, performance.now())));
    const name = replicas > 1 ? `${replicas}× ${ctx.backend.name}` : ctx.backend.name;
    return { stack: { name, servers, db: ctx.db }, coldMs };
  } catch (err) {
    await stopStack({ name: "", servers });
    throw err;
  }
}

/** Stops every server of a stack. */
export async function stopStack(stack: Stack): Promise<void> {
  await Promise.all(stack.servers.map((s) => s.stop()));
}

/** A fresh store and server stack for one run; stopped and removed after `fn`. */
export async function withFreshStack(
  ctx: RunContext,
  fn: (stack: Stack, store: Store) => Promise<Sample[]>,
  o: { replicas?: number; kineArgs?: string[] } = {},
): Promise<Sample[]> {
  const store = await newStore(ctx);
  try {
    const { stack } = await start(ctx, store, o);
    try {
      return await fn(stack, store);
    } finally {
      await stopStack(stack);
    }
  } finally {
    await removeStore(ctx, store);
  }
}

/** The gRPC target of a stack's first server. */
export const target = (stack: Stack) => stack.servers[0].target;

/** Every server's metrics, merged; undefined if any scrape failed or none exposes them. */
async function scrapeAll(stack: Stack): Promise<DaemonMetrics | undefined> {
  const all = await Promise.all(stack.servers.map((s) => scrape(s.metricsUrl)));
  if (all.some((m) => !m)) return undefined;
  const merged: DaemonMetrics = { gapFills: {} };
  for (const m of all as DaemonMetrics[]) {
    if (m.loopDelay) merged.loopDelay = addInto(merged.loopDelay, m.loopDelay);
    if (m.batchSize) merged.batchSize = addInto(merged.batchSize, m.batchSize);
    for (const [k, n] of Object.entries(m.gapFills)) {
      merged.gapFills[k] = (merged.gapFills[k] ?? 0) + n;
    }
  }
  return merged;
}

/** Samples the summed VmRSS of several processes. */
class StackRss {
  readonly #samplers: RssSampler[];
  constructor(stack: Stack) {
    this.#samplers = stack.servers.map((s) => new RssSampler(s.pid));
  }
  stop(): { peak: number; last: number } {
    for (const s of this.#samplers) s.stop();
    // Peaks of different processes need not coincide: their sum bounds the stack's peak.
    return {
      peak: this.#samplers.reduce((n, s) => n + s.peak, 0),
      last: this.#samplers.reduce((n, s) => n + s.last, 0),
    };
  }
}

/**
 * Runs `load` while measuring the stack from outside; returns a partial
 * sample. `loadCpuSeconds` counts the CPU of the load's side where the Go
 * generator is not all of it (a client the bench spawned, say).
 */
export async function measure<T>(
  ctx: RunContext,
  stack: Stack,
  load: () => Promise<T>,
  loadCpuSeconds = () => ctx.loadgen.cpuSeconds(),
): Promise<{ result: T; sample: Sample }> {
  const probe = await HealthProbe.start(ctx.loadgen, target(stack));
  const rss = new StackRss(stack);
  const cpu0 = stackCpuSeconds(stack);
  const db0 = stack.db ? treeCpuSeconds(stack.db.pid) : 0;
  const lg0 = loadCpuSeconds();
  // Without reaped children: a client that ran and exited meanwhile is the load's CPU.
  const self0 = cpuSeconds(Deno.pid, false);
  const busy0 = coreBusySeconds();
  const issues0 = stack.servers.map((s) => new Map(s.log.issues));
  const metrics0 = await scrapeAll(stack);
  const t0 = performance.now();
  let result: T;
  let metrics1: DaemonMetrics | undefined;
  // The scrape after the load is not counted in the wall time.
  let scrapeMs = 0;
  let rssSeen = { peak: 0, last: 0 };
  let health;
  try {
    result = await load();
    const s0 = performance.now();
    metrics1 = metrics0 && await scrapeAll(stack);
    scrapeMs = performance.now() - s0;
  } finally {
    rssSeen = rss.stop();
    health = await probe.stop().catch(() => undefined);
  }
  const wallS = (performance.now() - t0 - scrapeMs) / 1000;
  const serverCpuS = stackCpuSeconds(stack) - cpu0;
  const loadgenCpuS = loadCpuSeconds() - lg0;
  const busy = coreBusySeconds().map((b, i) => b - busy0[i]);
  // Pinned: whatever else ran on the server's core. Unpinned: all the machine
  // did besides the servers, the generator and this coordinator.
  const otherCpuS = ctx.serverCpus === undefined
    ? busy.reduce((n, b) => n + b, 0) - serverCpuS - loadgenCpuS -
      (cpuSeconds(Deno.pid, false) - self0)
    : ctx.serverCpus.split(",").reduce((n, c) => n + (busy[Number(c)] ?? 0), 0) - serverCpuS;
  const sample: Sample = {
    workload: "",
    server: stack.name,
    wallS,
    ops: {},
    rate: true,
    writes: 0,
    serverCpuS,
    databaseCpuS: stack.db ? treeCpuSeconds(stack.db.pid) - db0 : undefined,
    loadgenCpuS,
    otherCpuS: busy.length ? Math.max(0, otherCpuS) : undefined,
    peakRss: stackPeakRss(stack),
    rss: rssSeen,
    databaseRss: stack.db ? databaseMemory(stack) : undefined,
    health: health?.latency,
    loopDelay: delta(metrics1?.loopDelay, metrics0?.loopDelay),
    batchSize: delta(metrics1?.batchSize, metrics0?.batchSize),
    gapFills: gapFillsWorthNoting(stack, counterDelta(metrics1?.gapFills, metrics0?.gapFills)),
    errors: {},
    notes: [],
  };
  stack.servers.forEach((s, i) => {
    for (const [issue, n] of s.log.issues) {
      const d = n - (issues0[i].get(issue) ?? 0);
      const key = `server log: ${issue}`;
      if (d > 0) sample.errors[key] = (sample.errors[key] ?? 0) + d;
    }
  });
  if (health?.failures) sample.errors["health probe failed"] = health.failures;
  return { result, sample };
}

/** Gap fills matter where several processes write, or wherever there were some. */
function gapFillsWorthNoting(
  stack: Stack,
  fills: Record<string, number> | undefined,
): Record<string, number> | undefined {
  if (!fills) return undefined;
  const any = Object.values(fills).some((n) => n > 0);
  return stack.servers.length > 1 || any ? fills : undefined;
}

/** Merges job results (histograms, errors, writes) into a sample. */
export function absorb(
  sample: Sample,
  results: { hist?: any; errors?: any; writes?: number }[],
): void {
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

/**
 * True if the backend commits a txn of several keys atomically; the NATS
 * backend refuses such txns (FailedPrecondition), as upstream's cannot do them.
 */
function multiKeyTxns(kind: Backend["kind"]): boolean {
  return kind !== "nats";
}

/**
 * Preloads keys `0..count-1` of `set` in txns of 100 puts, 16 txns in
 * flight; where the backend has no multi-key txns, in single puts, 64 in
 * flight. With `maxMs` it stops after that long: keys `0..loaded-1` are there.
 */
export function preload(
  ctx: RunContext,
  stack: Stack,
  set: "kube" | "list" | "scale",
  count: number,
  valueSize: number,
  maxMs = 0,
): Promise<{ writes: number; loaded: number; hist: any }> {
  const txns = multiKeyTxns(ctx.backend.kind);
  return ctx.loadgen.call("preload", {
    maxMs,
    target: target(stack),
    set,
    from: 0,
    to: count,
    small: ctx.sizes.list.small,
    valueSize,
    batch: txns ? 100 : 1,
    concurrency: txns ? 16 : 64,
  });
}

/** The notes a bulk-load row gets where it could not use txns or ran out of time. */
export function bulkNotes(ctx: RunContext, loaded: number, asked: number, maxMs: number): string[] {
  return [
    multiKeyTxns(ctx.backend.kind)
      ? ""
      : "single puts, 64 in flight: this backend refuses multi-key txns",
    loaded < asked
      ? `**stopped after ${maxMs / 1000} s: ${loaded.toLocaleString("en-US")} of ${
        asked.toLocaleString("en-US")
      } ${PARTIAL}; later rows use those**`
      : "",
  ].filter(Boolean);
}
