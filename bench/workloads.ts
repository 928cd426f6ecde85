/**
 * The workloads, coordinator side: each starts a server stack, drives the
 * Go load generator's jobs against it, measures the stack from outside and
 * returns {@link Sample}s for the table.
 */
import { scrape } from "./metrics.ts";
import { PARTIAL } from "./summary.ts";
import { capture } from "./process.ts";
import { cpuSeconds, memory } from "./procfs.ts";
import type { Stack } from "./server.ts";
import { Histogram } from "./stats.ts";

import {
  absorb,
  type Backend,
  bulkNotes,
  measure,
  newStore,
  preload,
  removeStore,
  type RunContext,
  type Sample,
  start,
  stopStack,
  type Store,
  target,
  withFreshStack,
} from "./harness.ts";

/**
 * (1) kube-apiserver-like mix with 4 prefix watchers on /registry/ (each on
 * its own connection, with prev_kv) that must see every acknowledged write
 * exactly once.
 */
export function kubeMix(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.kube;
  return withFreshStack(ctx, async (stack) => {
    await preload(ctx, stack, "kube", z.preload, 2048);
    const watch = ctx.loadgen.run("watchers", {
      target: target(stack),
      prefix: "/registry/",
      count: z.watchers,
    });
    await watch.ready;
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("kube", {
        target: target(stack),
        conns: z.conns,
        loops: z.loops,
        durationMs: z.ms,
        namespaces: 50,
        valueSize: 2048,
      }));
    const expected = new Set<number>(result.revisions);
    let untilRevision = 0;
    for (const r of expected) untilRevision = Math.max(untilRevision, r);
    watch.stop({ untilRevision });
    const watched = await watch.done;
    sample.workload = `kube mix (${z.loops} workers on ${z.conns} connections, 2 KiB, ${
      count(z.preload)
    } preloaded)`;
    absorb(sample, [result, watched]);
    if (result.conflicts) {
      sample.errors["txn compare failed (unexpected conflict)"] = result.conflicts;
    }
    sample.watchCheck = {
      watchers: watched.watchers.length,
      writes: expected.size,
      problems: verifyWatchers(expected, watched.watchers),
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
  return withFreshStack(ctx, async (stack) => {
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("puts", {
        target: target(stack),
        conns: z.clients,
        concurrency: z.clients,
        durationMs: z.ms,
        leaseTTL: 3600,
        valueSize: 256,
        prefix: "/perf/",
      }));
    sample.workload = `lease puts (${z.clients} clients, 256 B)`;
    absorb(sample, [result]);
    return [sample];
  });
}

/** Put throughput as in-flight requests rise: shows where the server, not the load, limits. */
export function putSweep(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.sweep;
  return withFreshStack(ctx, async (stack) => {
    const samples = [];
    for (const c of z.levels) {
      const { result, sample } = await measure(ctx, stack, () =>
        ctx.loadgen.call("puts", {
          target: target(stack),
          conns: Math.min(8, c),
          concurrency: c,
          durationMs: z.ms,
          leaseTTL: 0,
          valueSize: 256,
          prefix: "/sweep/",
        }));
      sample.workload = `put sweep: ${c} in flight`;
      absorb(sample, [result]);
      samples.push(sample);
    }
    return samples;
  });
}

/** `100k`, `500`: a key count as the workload names show it. */
export const count = (n: number) =>
  n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n);

/**
 * (3) Full listings of a large store and (5) cold start on it. The store is
 * loaded once per backend (kept across rounds and modes; memory:// is
 * reloaded each time).
 */
export async function bigStore(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.list;
  const samples: Sample[] = [];
  const persistent = ctx.backend.kind !== "memory";
  let store = persistent ? ctx.bigStores.get(ctx.backend.name) : undefined;
  let running: Stack | undefined;
  try {
    if (!store) {
      store = await newStore(ctx);
      running = (await start(ctx, store)).stack;
      const stack = running;
      const { result, sample } = await measure(
        ctx,
        stack,
        () => preload(ctx, stack, "list", z.total, z.valueSize, z.maxMs),
      );
      store.keys = result.loaded;
      sample.workload = `bulk load ${count(z.total)} keys (txns of 100 puts, 512 B)`;
      sample.notes.push(...bulkNotes(ctx, result.loaded, z.total, z.maxMs));
      absorb(sample, [result]);
      samples.push(sample);
      if (persistent) {
        ctx.bigStores.set(ctx.backend.name, store);
        await stopStack(running);
        running = undefined;
      }
    }
    let coldMs: number | undefined;
    if (!running) ({ stack: running, coldMs } = await start(ctx, store));
    const stack = running;
    if (coldMs !== undefined) samples.push(await coldStart(stack, coldMs, z.total));
    const small = count(z.small);
    const all = count(z.total);
    const keys = store.keys ?? z.total;
    const smallKeys = Math.min(z.small, keys);
    // The whole list alone, streamed (etcd 3.4 has no RangeStream) and paged, first, so that
    // each has its own peak RSS.
    const alone = [
      { name: `list ${all} RangeStream`, mode: "stream" },
      { name: `list ${all} paged`, mode: "paged" },
    ].filter((l) => l.mode !== "stream" || ctx.backend.kind !== "etcd");
    for (const l of alone) {
      const one = await measure(ctx, stack, () =>
        ctx.loadgen.call("listings", {
          target: target(stack),
          reps: 1,
          listings: [{ ...l, prefix: "/list/", expect: keys }],
        }));
      one.sample.workload = `${l.name} alone (512 B)`;
      one.sample.rate = false;
      absorb(one.sample, [one.result]);
      samples.push(one.sample);
    }
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("listings", {
        target: target(stack),
        reps: 1,
        listings: [
          { name: `list ${small} paged`, prefix: "/list/small/", mode: "paged", expect: smallKeys },
          {
            name: `list ${small} unpaged`,
            prefix: "/list/small/",
            mode: "unpaged",
            expect: smallKeys,
          },
          { name: `list ${all} paged`, prefix: "/list/", mode: "paged", expect: keys },
          { name: `list ${all} unpaged`, prefix: "/list/", mode: "unpaged", expect: keys },
          { name: `count ${all}`, prefix: "/list/", mode: "count", expect: keys },
        ],
      }));
    sample.workload = `list ${small} / ${all} keys (limit 500 and unpaged, 512 B)`;
    sample.rate = false;
    absorb(sample, [result]);
    samples.push(sample);
  } finally {
    if (running) await stopStack(running);
    if (store && !persistent) await removeStore(ctx, store);
  }
  return samples;
}

/** The cold start sample: spawn → first Range, with what the daemon used meanwhile. */
async function coldStart(stack: Stack, coldMs: number, keys: number): Promise<Sample> {
  const server = stack.servers[0];
  // Everything the daemon observed from its start to the first Range answered.
  const startup = await scrape(server.metricsUrl);
  const h = new Histogram();
  h.add(coldMs);
  return {
    workload: `cold start on ${count(keys)} keys (spawn → first Range)`,
    server: stack.name,
    wallS: coldMs / 1000,
    ops: { "start": h.toJSON() },
    rate: false,
    writes: 0,
    serverCpuS: cpuSeconds(server.pid),
    loadgenCpuS: 0,
    peakRss: memory(server.pid).hwm,
    rss: { peak: 0, last: 0 },
    loopDelay: startup?.loopDelay,
    errors: {},
    notes: startup?.loopDelay ? ["event-loop delay: daemon start → first Range"] : [],
  };
}

/**
 * (4) Idle single-key watchers plus a steady write rate on a watched prefix:
 * watch delivery latency and server memory.
 */
export function idleWatchers(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.idle;
  return withFreshStack(ctx, async (stack) => {
    const streams = Math.ceil(z.watchers / z.perStream);
    const idle = ctx.loadgen.run("idleWatchers", {
      target: target(stack),
      conns: Math.min(8, streams),
      streams,
      perStream: z.perStream,
    });
    await idle.ready;
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("delivery", {
        targets: [target(stack)],
        rate: z.rate,
        concurrency: 0,
        durationMs: z.ms,
        valueSize: 256,
        prefix: "/hot/",
        crossOnly: false,
      }));
    idle.stop();
    const idleResult = await idle.done;
    sample.workload = `${streams * z.perStream} idle watchers + ${z.rate} puts/s`;
    absorb(sample, [result, idleResult]);
    addDelivery(sample, result);
    if (idleResult.events) sample.errors["idle watcher: unexpected events"] = idleResult.events;
    sample.notes.push(`RSS at end ${(sample.rss.last / 2 ** 20).toFixed(0)} MiB`);
    return [sample];
  });
}

/**
 * (5b) Consistent lists as the apiserver serves them from its cache: a
 * `WatchProgressRequest` every 100 ms on a watch stream while puts go on,
 * each timed to its answer, which must never come before an event it covers.
 */
export function progressUnderWrites(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.progress;
  return withFreshStack(ctx, async (stack) => {
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("progress", {
        target: target(stack),
        prefix: "/progress/",
        rate: z.rate,
        durationMs: z.ms,
        everyMs: z.everyMs,
        valueSize: 256,
      }));
    sample.workload = `WatchProgressRequest every ${z.everyMs} ms + ${z.rate} puts/s`;
    absorb(sample, [result]);
    sample.wallS = Math.min(sample.wallS, result.writeMs / 1000);
    return [sample];
  });
}

/**
 * A flood of bad logins against a store with auth enabled (a third for a
 * real user with a wrong password, the rest for made-up names), and what it
 * costs another client: the latency of its Ranges while the flood is answered.
 */
export function loginFlood(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.logins;
  return withFreshStack(ctx, async (stack) => {
    const { result, sample } = await measure(
      ctx,
      stack,
      () =>
        ctx.loadgen.call("loginFlood", { target: target(stack), logins: z.logins, conns: z.conns }),
    );
    sample.workload = `${z.logins} concurrent bad logins: another client's Range`;
    sample.rate = false;
    absorb(sample, [result]);
    const outcomes = Object.entries<number>(result.logins).map(([what, n]) => `${n}× ${what}`);
    sample.notes.push(`flood answered in ${Math.round(result.floodMs)} ms: ${outcomes.join(", ")}`);
    return [sample];
  });
}

/**
 * Copies a delivery job's latencies and check results into a sample. Rates
 * count the writing phase only, not the wait for the last events after it.
 */
function addDelivery(sample: Sample, r: any): void {
  sample.rateS = Math.min(sample.wallS, r.writeMs / 1000);
  sample.delivery = r.delivery;
  sample.deliverySent = r.deliverySent;
  if (r.missedEvents) sample.errors["watcher: events never delivered"] = r.missedEvents;
  if (r.duplicates) sample.errors["watcher: duplicate or unknown events"] = r.duplicates;
  if (r.eventsBeforeAck && sample.writes) {
    const pct = Math.round((r.eventsBeforeAck / (sample.delivery?.count || 1)) * 100);
    sample.notes.push(`${pct}% of events arrived before their put's response (counted as 0)`);
  }
}

/**
 * What our daemon logged about its last compaction: how many transactions
 * (batches) it took and their mean time, since no metric says so.
 */
async function compactionBatches(store: Store): Promise<string[]> {
  const log = await Deno.readTextFile(`${store.dir}/server-0.log`).catch(() => "");
  const runs = [
    ...log.matchAll(/COMPACT compacted from \d+ to \d+ in (\d+) transactions.*duration=(\d+)ms/g),
  ];
  const last = runs.at(-1);
  if (!last) return [];
  const [batches, ms] = [Number(last[1]), Number(last[2])];
  return [
    `kine logged ${batches} compaction batches, ${Math.round(ms / batches)} ms each on average`,
  ];
}

/** Bytes a directory holds (`du -sb`), 0 if it cannot be read. */
async function diskBytes(dir: string): Promise<number> {
  return Number((await capture("du", ["-sb", dir])).split(/\s/)[0]) || 0;
}

/**
 * (6) Scale: `objects` objects of 1 KiB loaded in txns of 100 puts, half of
 * them updated once by single Puts from 16 callers, then a count-only range
 * over all of them, a physical compaction of the whole history (with a write
 * every 10 ms timing how long compaction holds writes up), Status latency, and
 * the store's disk footprint (data, indexes and WAL) after load and after
 * compaction. Kine runs with `--compact-interval 0` so the Compact call does
 * the work, as etcd's does.
 */
export function scale(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.scale;
  const n = count(z.objects);
  return withFreshStack(ctx, async (stack, store) => {
    // A network database's directory holds other stores: count what this run adds.
    const diskDir = ctx.db?.dir ?? store.dir;
    const disk0 = await diskBytes(diskDir);
    const samples: Sample[] = [];
    let loaded = z.objects;
    let compactionFinished = true;
    const step = async (name: string, load: () => Promise<any>, rate = true) => {
      const { result, sample } = await measure(ctx, stack, load);
      sample.workload = `scale ${n}: ${name}`;
      sample.rate = rate;
      if (samples.length > 0 && loaded < z.objects) {
        sample.notes.push(`**on the ${loaded.toLocaleString("en-US")} ${PARTIAL}**`);
      }
      absorb(sample, [result]);
      samples.push(sample);
      return sample;
    };
    const load = await step(`bulk load (txns of 100 puts, 1 KiB)`, async () => {
      const r = await preload(ctx, stack, "scale", z.objects, 1024, z.maxMs);
      loaded = r.loaded;
      return r;
    });
    load.notes.push(...bulkNotes(ctx, loaded, z.objects, z.maxMs));
    await step(
      `update half once (${z.callers} callers, single puts)`,
      () =>
        ctx.loadgen.call("updates", {
          target: target(stack),
          conns: 4,
          concurrency: z.callers,
          set: "scale",
          from: 0,
          to: Math.floor(loaded / 2),
          valueSize: 1024,
          maxMs: z.maxMs,
        }),
    );
    const diskLoaded = await diskBytes(diskDir) - disk0;
    await step(
      "count-only range over all",
      () =>
        ctx.loadgen.call("listings", {
          target: target(stack),
          reps: 5,
          listings: [{
            name: "count only",
            prefix: "/registry/scale/",
            mode: "count",
            expect: loaded,
          }],
        }),
      false,
    );
    const compaction = await step(
      "compact the whole history (a put every 10 ms meanwhile)",
      async () => {
        const r = await ctx.loadgen.call("compact", {
          target: target(stack),
          probeIntervalMs: 10,
          maxMs: z.maxMs,
        });
        compactionFinished = r.finished;
        return r;
      },
      false,
    );
    if (!compactionFinished) {
      compaction.notes.push(
        `**compaction unfinished after ${z.maxMs / 1000} s; the server went on with it ` +
          "during the Status calls**",
      );
    }
    const compacted = await diskBytes(diskDir) - disk0;
    compaction.notes.push(...await compactionBatches(store));
    await step(
      `Status, ${z.statusCalls} calls one after another`,
      () => ctx.loadgen.call("status", { target: target(stack), count: z.statusCalls }),
      false,
    );
    if (ctx.backend.kind !== "memory") {
      compaction.disk = { loaded: diskLoaded, compacted };
    }
    return samples;
  }, { kineArgs: ["--compact-interval", "0"] });
}

/**
 * (7) Several kine processes on one store (issue 15's HA shape): writes spread
 * over all of them, one watcher on each, and the delivery time of each write
 * to the watchers of the *other* processes (write acknowledged on A → event
 * on B). A closed loop finds the highest rate the group sustains; a paced
 * run shows delivery at a fixed rate. etcd's row is one etcd with the same
 * connections, as a baseline.
 */
export function severalServers(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.ha;
  return withFreshStack(ctx, async (stack) => {
    const targets = Array.from({ length: z.servers }, (_, i) => {
      const s = stack.servers[i % stack.servers.length];
      return s.target;
    });
    const samples: Sample[] = [];
    for (const paced of [false, true]) {
      const { result, sample } = await measure(ctx, stack, () =>
        ctx.loadgen.call("delivery", {
          targets,
          rate: paced ? z.rate : 0,
          concurrency: paced ? 0 : z.writers,
          durationMs: z.ms,
          valueSize: 256,
          prefix: paced ? "/ha-paced/" : "/ha/",
          crossOnly: true,
        }));
      sample.workload = `${z.servers} servers on one store, ${
        paced ? `${z.rate} puts/s` : `${z.writers} writers, closed loop`
      }: delivery to the other servers' watchers`;
      absorb(sample, [result]);
      addDelivery(sample, result);
      if (stack.servers.length === 1) {
        sample.notes.push(`baseline: one server, ${z.servers} connections`);
      }
      samples.push(sample);
    }
    return samples;
  }, { replicas: z.servers });
}

/** Backends that can share one store between several kine processes. */
export function sharesStore(kind: Backend["kind"]): boolean {
  return kind !== "memory";
}
