/**
 * `deno task bench`: real etcd and our daemon on each chosen backend under the
 * same workloads, driven by a Go load generator on etcd's own client, in
 * alternating rounds, pinned (server stack on core 0, load on core 1) and
 * unpinned. Prints one markdown table and writes it to
 * bench/results/<date>-<label>.md.
 *
 * @module
 */
import { type Database, type Engine, startDatabase, Unavailable } from "./databases.ts";
import { checkPerf } from "./checkperf.ts";
import { footprint } from "./footprint.ts";
import { freshness } from "./freshness.ts";
import { requirePackages } from "./gobuild.ts";
import { KINE_MAIN } from "./kine.ts";
import { LoadGen } from "./loadgen.ts";
import { million } from "./million.ts";
import { capture, killAll, pinSelf } from "./process.ts";
import { initClockTicks } from "./procfs.ts";
import { HEADER, type Result, SATURATED, type Skip, table } from "./report.ts";
import { StartError } from "./server.ts";
import { summary } from "./summary.ts";
import {
  type Backend,
  engineOf,
  FULL,
  KINE_BACKENDS,
  type KineBackend,
  QUICK,
  type RunContext,
  type Sample,
  type Sizes,
  type Store,
} from "./harness.ts";
import {
  bigStore,
  idleWatchers,
  kubeMix,
  leasePuts,
  loginFlood,
  progressUnderWrites,
  putSweep,
  scale,
  severalServers,
  sharesStore,
} from "./workloads.ts";

const WORKLOADS = [
  "footprint",
  "kube",
  "lease",
  "sweep",
  "list",
  "watch",
  "progress",
  "scale",
  "ha",
  "logins",
  "checkperf",
  "million",
  "freshness",
];

const CP_S = FULL.checkperf.maxMs / 1000;
const MILLION = FULL.million.keys.toLocaleString("en-US");
const MILLION_S = FULL.million.maxMs / 1000;
const FRESH_S = FULL.freshness.maxMs / 1000;

const USAGE = `usage: deno task bench [flags]
  --mode pinned|unpinned|both   pinned: server stack on core 0, load generator on core 1 (default both)
  --backends LIST               our backends to run next to etcd, from ${KINE_BACKENDS.join(",")}
                                (default sqlite,memory); postgres, mysql and nats run on private
                                servers the bench starts (initdb, mariadbd, nats-server -js)
  --only LIST                   workloads, from ${WORKLOADS.join(",")} (default all)
                                time bounds per server of the newest ones (once per run):
                                checkperf: etcdctl check perf --load=l and --load=m (--quick: s),
                                  60 s each by etcdctl's own clock, killed after ${CP_S} s
                                million: ${MILLION} keys of ${FULL.million.valueSize} B in txns of 100 puts,
                                  cut at ${MILLION_S} s (later rows use what loaded), then 5 count-only
                                  Ranges and 5 first pages of 500 (120 s each at most)
                                freshness (each mode): ${FULL.freshness.count} put-then-Range pairs, cut at ${FRESH_S} s;
                                  two kine servers on one store, so not memory
  --scale-objects N             objects of the scale workload (default ${FULL.scale.objects})
  --ha-servers N                kine processes on one store in the ha workload (default ${FULL.ha.servers})
  --quick                       short smoke run
  --label NAME                  results file bench/results/<date>-NAME.md
  --kine PATH                   daemon entry point (default this checkout's main.ts)
env BENCH_KINE_DENO_FLAGS="--cpu-prof --cpu-prof-dir=DIR" passes extra deno flags to the daemon`;

/** Command-line options. */
export interface Options {
  modes: ("pinned" | "unpinned")[];
  backends: Backend[];
  only: string[];
  quick: boolean;
  sizes: Sizes;
  label: string;
  kineMain: string;
}

function positive(flags: Map<string, string>, name: string, fallback: number): number {
  const raw = flags.get(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer`);
  return n;
}

/** Parses the flags above; throws with a message on bad input. */
export function parseOptions(args: string[]): Options {
  const flags = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split(/=(.*)/s, 2);
    if (name === "--quick" || name === "--help" || name === "-h") flags.set(name, "");
    else if (name.startsWith("--")) flags.set(name, inline ?? args[++i] ?? "");
    else throw new Error(`unexpected argument ${args[i]}`);
  }
  if (flags.has("--help") || flags.has("-h")) throw new Error(USAGE);
  const known = [
    "--mode",
    "--backends",
    "--only",
    "--quick",
    "--label",
    "--kine",
    "--scale-objects",
    "--ha-servers",
  ];
  for (const f of flags.keys()) {
    if (!known.includes(f)) throw new Error(`unknown flag ${f}\n${USAGE}`);
  }
  const mode = flags.get("--mode") ?? "both";
  if (!["pinned", "unpinned", "both"].includes(mode)) throw new Error(`bad --mode ${mode}`);
  const kinds = (flags.get("--backends") ?? "sqlite,memory").split(",").filter(Boolean);
  for (const k of kinds) {
    if (!(KINE_BACKENDS as readonly string[]).includes(k)) {
      throw new Error(`bad backend ${k}: choose from ${KINE_BACKENDS.join(",")}`);
    }
  }
  const only = (flags.get("--only") ?? WORKLOADS.join(",")).split(",").filter(Boolean);
  for (const w of only) if (!WORKLOADS.includes(w)) throw new Error(`bad workload ${w}`);
  const quick = flags.has("--quick");
  const base = quick ? QUICK : FULL;
  const sizes: Sizes = {
    ...base,
    scale: { ...base.scale, objects: positive(flags, "--scale-objects", base.scale.objects) },
    ha: { ...base.ha, servers: positive(flags, "--ha-servers", base.ha.servers) },
  };
  return {
    modes: mode === "both" ? ["pinned", "unpinned"] : [mode as "pinned" | "unpinned"],
    backends: [
      { name: "etcd", kind: "etcd" },
      ...[...new Set(kinds)].map((k) => ({ name: `kine-${k}`, kind: k as KineBackend })),
    ],
    only,
    quick,
    sizes,
    label: flags.get("--label") ?? `${kinds.join("-")}${quick ? "-quick" : ""}`,
    kineMain: flags.get("--kine") ?? KINE_MAIN,
  };
}

type Workload = (ctx: RunContext) => Promise<Sample[]>;

/**
 * Workloads in run order, with rounds per mode. The scale workload runs
 * unpinned only (as it was first measured); the pinned headline rows get two
 * rounds in a full run.
 */
function plan(o: Options, mode: string): { name: string; run: Workload; rounds: number }[] {
  const headline = mode === "pinned" && !o.quick;
  const once = mode === o.modes[0] ? 1 : 0;
  const all = [
    // Resident sizes and one start each: once per run, in its first mode.
    { name: "footprint", run: footprint, rounds: once },
    { name: "kube", run: kubeMix, rounds: headline ? 2 : 1 },
    { name: "lease", run: leasePuts, rounds: headline ? 2 : 1 },
    { name: "sweep", run: putSweep, rounds: mode === "pinned" ? 1 : 0 },
    // Listing a large store on a network database takes long: one round.
    { name: "list", run: bigStore, rounds: 1 },
    { name: "watch", run: idleWatchers, rounds: 1 },
    { name: "progress", run: progressUnderWrites, rounds: 1 },
    { name: "ha", run: severalServers, rounds: 1 },
    { name: "logins", run: loginFlood, rounds: 1 },
    { name: "scale", run: scale, rounds: mode === "unpinned" || o.quick ? 1 : 0 },
    // A minute or more per server each: once per run, in its first mode.
    { name: "checkperf", run: checkPerf, rounds: once },
    { name: "million", run: million, rounds: once },
    { name: "freshness", run: freshness, rounds: 1 },
  ];
  return all.filter((w) => o.only.includes(w.name) && w.rounds > 0);
}

/**
 * What the checkperf and million workloads may add to the run's time limit:
 * their bounds per server, once per run (the rest of the limit predates them).
 */
function addedBoundMs(o: Options): number {
  const z = o.sizes;
  const perServer =
    (o.only.includes("checkperf") ? z.checkperf.loads.length * z.checkperf.maxMs : 0) +
    (o.only.includes("million") ? z.million.maxMs + 120_000 : 0);
  return perServer * o.backends.length;
}

async function machine(): Promise<string> {
  const cpu = (await Deno.readTextFile("/proc/cpuinfo").catch(() => ""))
    .match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  const mem = (await Deno.readTextFile("/proc/meminfo").catch(() => ""))
    .match(/^MemTotal:\s*(\d+)/m)?.[1];
  const etcd = (await capture("etcd", ["--version"])).split("\n")[0];
  const go = await capture("go", ["version"]);
  const git = await capture("git", [
    "-C",
    new URL("..", import.meta.url).pathname,
    "describe",
    "--always",
    "--dirty",
  ]);
  return [
    `- machine: ${navigator.hardwareConcurrency} CPUs (nproc ${await capture(
      "nproc",
      [],
    )}), ${cpu}, ${mem ? Math.round(Number(mem) / 2 ** 20) : "?"} GiB RAM, Linux ${await capture(
      "uname",
      ["-r"],
    )}`,
    `- deno ${Deno.version.deno} (V8 ${Deno.version.v8}), ${etcd}, kine checkout ${git || "?"}`,
    `- load generator: bench/loadgen (etcd clientv3 3.4, ${go || "go"})`,
    `- load average at the start: ${await capture("cat", ["/proc/loadavg"])}`,
  ].join("\n");
}

/** Starts each network backend's private database server for one mode; records the ones that cannot run. */
async function startDatabases(
  o: Options,
  tmp: string,
  cpus: string | undefined,
  skipped: Map<string, string>,
): Promise<Map<Engine, Database>> {
  const dbs = new Map<Engine, Database>();
  for (const b of o.backends) {
    const engine = engineOf(b.kind);
    if (!engine || skipped.has(b.name)) continue;
    console.error(`starting a private ${engine} server ...`);
    try {
      dbs.set(
        engine,
        await startDatabase(engine, `${tmp}/db-${engine}`, cpus, `${tmp}/${engine}.log`),
      );
    } catch (err) {
      if (!(err instanceof Unavailable)) throw err;
      console.error(`${b.name}: ${err.message}`);
      skipped.set(b.name, err.message);
    }
  }
  return dbs;
}

async function main(): Promise<number> {
  let o: Options;
  try {
    o = parseOptions(Deno.args);
  } catch (err) {
    console.error((err as Error).message);
    return 2;
  }
  const missing = async (cmd: string) => !(await capture("sh", ["-c", `command -v ${cmd}`]));
  await requirePackages([
    ...(await missing("etcd")) ? [{ what: "etcd", pkg: "etcd-server" }] : [],
    ...o.only.includes("checkperf") && await missing("etcdctl")
      ? [{ what: "etcdctl", pkg: "etcd-client" }]
      : [],
  ]);
  const started = performance.now();
  // Before this process pins itself, or nproc would count its one core.
  const machineInfo = await machine();
  const tmp = await Deno.makeTempDir({ prefix: "kine-bench-" });
  const cores = navigator.hardwareConcurrency;
  let loadgen: LoadGen | undefined;
  let dbs = new Map<Engine, Database>();
  const stopDatabases = async () => {
    await Promise.all([...dbs.values()].map((d) => d.stop().catch(() => {})));
    dbs = new Map();
  };
  const cleanup = async () => {
    await loadgen?.close().catch(() => {});
    await stopDatabases();
    await killAll();
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    console.error("\ninterrupted: stopping servers and the load generator");
    cleanup().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  // A hard bound on the whole run, whatever hangs.
  const limitMs = (o.quick ? 10 * 60_000 : 75 * 60_000) + addedBoundMs(o);
  const watchdog = setTimeout(() => {
    console.error(`bench exceeded ${limitMs / 60_000} min: giving up`);
    cleanup().finally(() => Deno.exit(1));
  }, limitMs);

  await initClockTicks();
  const results: Result[] = [];
  const skips: Skip[] = [];
  const skipped = new Map<string, string>();
  const bigStores = new Map<string, Store>();
  try {
    for (const mode of o.modes) {
      if (mode === "pinned" && cores < 2) {
        skips.push({ mode, server: "(all)", why: "pinned mode needs 2 cores" });
        continue;
      }
      await pinSelf(mode === "pinned" ? "1" : `0-${cores - 1}`);
      const loadCpus = mode === "pinned" ? "1" : undefined;
      const serverCpus = mode === "pinned" ? "0" : undefined;
      loadgen = await LoadGen.start(loadCpus, `${tmp}/loadgen.log`);
      dbs = await startDatabases(o, tmp, serverCpus, skipped);
      const ctxFor = (backend: Backend): RunContext => ({
        backend,
        serverCpus,
        loadCpus,
        loadgen: loadgen!,
        sizes: o.sizes,
        tmp,
        kineMain: o.kineMain,
        db: dbs.get(engineOf(backend.kind)!),
        bigStores,
      });
      for (const w of plan(o, mode)) {
        for (let round = 1; round <= w.rounds; round++) {
          for (const backend of o.backends) {
            if (skipped.has(backend.name)) continue;
            if (["ha", "freshness"].includes(w.name) && !sharesStore(backend.kind)) continue;
            const label = `[${mode}] ${w.name} round ${round}/${w.rounds} ${backend.name}`;
            console.error(`${label} ...`);
            try {
              for (const sample of await w.run(ctxFor(backend))) results.push({ mode, sample });
            } catch (err) {
              if (interrupted) return 130;
              const why = (err as Error).message;
              console.error(`${label} failed: ${why}`);
              // A daemon that cannot start on its backend (a scheme not built yet, say)
              // is left out from then on; several processes on one store may fail alone.
              if (err instanceof StartError && !["ha", "freshness"].includes(w.name)) {
                skipped.set(backend.name, `daemon failed to start (${why})`);
                continue;
              }
              results.push({ mode, sample: failed(w.name, backend.name, why) });
              // Jobs of the failed run may linger in the generator: start afresh.
              await loadgen.close();
              loadgen = await LoadGen.start(loadCpus, `${tmp}/loadgen.log`);
            }
          }
        }
      }
      await loadgen.close();
      loadgen = undefined;
      await stopDatabases();
    }
  } catch (err) {
    if (interrupted) return 130;
    throw err;
  } finally {
    clearTimeout(watchdog);
    await cleanup();
  }
  for (const [server, why] of skipped) skips.push({ mode: o.modes.join("+"), server, why });

  const minutes = (performance.now() - started) / 60_000;
  const md = [
    `# kine bench: ${o.label}`,
    "",
    `- command: \`deno task bench ${Deno.args.join(" ")}\``,
    `- date: ${new Date().toISOString()}, run time ${minutes.toFixed(1)} min`,
    machineInfo,
    `- load average at the end: ${await capture("cat", ["/proc/loadavg"])}`,
    "- pinned = etcd, or kine together with its database server, on core 0; the load generator " +
    "and the coordinator on core 1. unpinned = no affinity. Server CPU and memory are those of " +
    "the whole stack (kine processes plus the database server's process tree); CPU from /proc " +
    "(utime+stime)",
    `- a row whose load generator used ≥ ${Math.round(SATURATED * 100)}% of a core is marked ` +
    "invalid and gets no ratio (it measured the generator), nor do rows compared with such an etcd row",
    "- ratios in parentheses are ours ÷ etcd: above 1 is better for ops/s, worse for latency, RSS and CPU",
    `- latency of listings and cold start is the time of one whole listing / start; ` +
    `"${HEADER[10]}" is a grpc health Check every 50 ms on its own connection during the load ` +
    "(etcd shown as the baseline of the probe itself)",
    `- "${HEADER[9]}" is our daemon's kine_event_loop_delay_seconds (how late a 10 ms timer ` +
    "fired), scraped from its /metrics right before and after the measured phase: the upper " +
    "bound of the bucket holding the 99th percentile of the delta (buckets 0.5, 1, 2, 3, 4, 5, " +
    "7.5, 10, 25, 50 ms…); for cold " +
    "start, everything from daemon start to the first Range. " +
    '"mean commit batch" in the notes is Δkine_txn_batch_size_sum ÷ Δ_count (txns per group commit); ' +
    '"gap fills" is Δkine_gap_fill_total by result over all kine processes, and the ids filled ' +
    "per 1,000 writes of the load",
    "",
    "## Summary: ours ÷ etcd (more writes/s is better; less of everything else)",
    "",
    summary(results),
    "",
    "## All measurements",
    "",
    table(results, skips),
    "",
  ].join("\n");
  console.log(md);
  const date = new Date().toISOString().slice(0, 10);
  const dir = new URL("./results/", import.meta.url).pathname;
  await Deno.mkdir(dir, { recursive: true });
  const file = `${dir}${date}-${o.label}.md`;
  await Deno.writeTextFile(file, md);
  console.error(`wrote ${file} (${minutes.toFixed(1)} min)`);
  return 0;
}

function failed(workload: string, server: string, why: string): Sample {
  return {
    workload: `${workload} (failed)`,
    server,
    wallS: 1,
    ops: {},
    rate: false,
    writes: 0,
    serverCpuS: 0,
    loadgenCpuS: 0,
    peakRss: 0,
    rss: { peak: 0, last: 0 },
    errors: { [why]: 1 },
    notes: [],
  };
}

if (import.meta.main) Deno.exit(await main());
