/** Folds samples into one markdown table, with ratios to etcd. */
import { addInto, bucketQuantile, type PromHistogram } from "./metrics.ts";
import { Histogram, Histograms } from "./stats.ts";
import type { Sample } from "./harness.ts";

/** A sample and the mode it ran in. */
export interface Result {
  mode: string;
  sample: Sample;
}

/** A server that was not measured, and why. */
export interface Skip {
  mode: string;
  server: string;
  why: string;
}

/** All rounds of one workload on one server in one mode. */
export interface Group {
  mode: string;
  workload: string;
  server: string;
  rounds: number;
  rate: boolean;
  wallS: number;
  /** Seconds over which ops count as throughput (the load itself, without draining after it). */
  rateS: number;
  ops: Histograms;
  /** Throughput of each round, for the spread. */
  roundRates: number[];
  writes: number;
  serverCpuS: number;
  databaseCpuS?: number;
  loadgenCpuS: number;
  otherCpuS?: number;
  peakRss: number;
  sampledRss: number;
  health: Histogram;
  /** Our daemon's event-loop delay and commit batch sizes, summed over rounds. */
  loopDelay?: PromHistogram;
  batchSize?: PromHistogram;
  gapFills?: Record<string, number>;
  databaseRss: number;
  disk?: { loaded: number; compacted?: number };
  delivery: Histogram;
  deliverySent: Histogram;
  /** The last round's {@link Sample.figures}. */
  figures?: Record<string, number | string>;
  errors: Record<string, number>;
  notes: string[];
  watchCheck?: { watchers: number; writes: number; problems: string[] };
}

/** Operations of every type together. */
export const totalOps = (h: Histograms) => [...h.byOp.values()].reduce((n, x) => n + x.count, 0);

/** Folds the rounds of each workload × server × mode into one group. */
export function group(results: Result[]): Group[] {
  const groups = new Map<string, Group>();
  for (const { mode, sample: s } of results) {
    const id = `${mode}\0${s.workload}\0${s.server}`;
    let g = groups.get(id);
    if (!g) {
      g = {
        mode,
        workload: s.workload,
        server: s.server,
        rounds: 0,
        rate: s.rate,
        wallS: 0,
        rateS: 0,
        ops: new Histograms(),
        roundRates: [],
        writes: 0,
        serverCpuS: 0,
        loadgenCpuS: 0,
        peakRss: 0,
        sampledRss: 0,
        databaseRss: 0,
        health: new Histogram(),
        delivery: new Histogram(),
        deliverySent: new Histogram(),
        errors: {},
        notes: [],
      };
      groups.set(id, g);
    }
    const ops = new Histograms().merge(s.ops);
    g.rounds++;
    g.wallS += s.wallS;
    g.rateS += s.rateS ?? s.wallS;
    g.ops.merge(ops);
    g.roundRates.push(totalOps(ops) / (s.rateS ?? s.wallS));
    g.writes += s.writes;
    g.serverCpuS += s.serverCpuS;
    if (s.databaseCpuS !== undefined) g.databaseCpuS = (g.databaseCpuS ?? 0) + s.databaseCpuS;
    g.loadgenCpuS += s.loadgenCpuS;
    if (s.otherCpuS !== undefined) g.otherCpuS = (g.otherCpuS ?? 0) + s.otherCpuS;
    g.peakRss = Math.max(g.peakRss, s.peakRss);
    g.sampledRss = Math.max(g.sampledRss, s.rss.peak);
    if (s.health) g.health.merge(s.health);
    if (s.loopDelay) g.loopDelay = addInto(g.loopDelay, s.loopDelay);
    if (s.batchSize) g.batchSize = addInto(g.batchSize, s.batchSize);
    if (s.gapFills) {
      const sum = g.gapFills ??= {};
      for (const [k, n] of Object.entries(s.gapFills)) sum[k] = (sum[k] ?? 0) + n;
    }
    g.databaseRss = Math.max(g.databaseRss, s.databaseRss ?? 0);
    if (s.disk) g.disk = s.disk;
    if (s.delivery) g.delivery.merge(s.delivery);
    if (s.deliverySent) g.deliverySent.merge(s.deliverySent);
    if (s.figures) g.figures = { ...g.figures, ...s.figures };
    for (const [m, n] of Object.entries(s.errors)) g.errors[m] = (g.errors[m] ?? 0) + n;
    for (const n of s.notes) if (!g.notes.includes(n)) g.notes.push(n);
    if (s.watchCheck) {
      const w = g.watchCheck ??= { watchers: s.watchCheck.watchers, writes: 0, problems: [] };
      w.writes += s.watchCheck.writes;
      w.problems.push(...s.watchCheck.problems);
    }
  }
  return [...groups.values()];
}

const SERVER_ORDER = [
  "etcd",
  "kine-sqlite",
  "kine-memory",
  "kine-postgres",
  "kine-mysql",
  "kine-nats",
];

/** Table order: etcd first, then our backends; `3× kine-x` sorts with `kine-x`. */
export function serverRank(name: string): number {
  const i = SERVER_ORDER.indexOf(name.replace(/^\d+× /, ""));
  return i < 0 ? SERVER_ORDER.length : i;
}

/**
 * Share of a core the load generator may use before a row is invalid: beyond
 * it the generator, not the server, may have set the pace.
 */
export const SATURATED = 0.9;

/**
 * Share of the server's core (pinned) or of a core (unpinned) that other
 * processes may take before a row is invalid: beyond it they, not the server,
 * may have set the pace (or lent it idle time).
 */
export const OTHERS_MAX = 0.1;

/** Share of a core that other processes took during the run, if measured. */
function othersShare(g: Group): number {
  return g.otherCpuS === undefined ? 0 : g.otherCpuS / g.wallS;
}

/** True if the load generator had headroom and nothing else took the server's time. */
export function valid(g: Group): boolean {
  return !(g.loadgenCpuS / g.wallS >= SATURATED) && othersShare(g) <= OTHERS_MAX;
}

/** `1,234` / `12.3` / `0.123`: about three significant digits. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return "—";
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString("en-US");
  if (Math.abs(x) >= 10) return x.toFixed(1);
  if (Math.abs(x) >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** ` (0.42×)`: ours ÷ etcd; empty for etcd itself or when undefined. */
/** Of a stack's CPU per 1k writes, kine's and its database server's parts. */
function databaseShare(g: Group): string {
  if (g.databaseCpuS === undefined || g.writes === 0) return "";
  const per = (s: number) => num((s / g.writes) * 1000);
  return ` (kine ${per(g.serverCpuS - g.databaseCpuS)} + database ${per(g.databaseCpuS)})`;
}

function ratio(ours: number, etcd: number | undefined): string {
  if (etcd === undefined || !(etcd > 0) || !Number.isFinite(ours)) return "";
  return ` (${(ours / etcd).toFixed(2)}×)`;
}

const mib = (b: number) => b / 2 ** 20;
const esc = (s: string) => s.replaceAll("|", "\\|");

function errorsNote(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort((a, b) => b[1] - a[1]);
  if (!entries.length) return "";
  const total = entries.reduce((n, [, c]) => n + c, 0);
  const top = entries.slice(0, 3).map(([m, c]) => `${c}× ${m}`).join("; ");
  return `**${total} errors/warnings**: ${top}${entries.length > 3 ? "; …" : ""}`;
}

/** Which side limited a run, judged from CPU use (pinned: one core each). */
function bound(g: Group): string {
  const server = g.serverCpuS / g.wallS;
  const load = g.loadgenCpuS / g.wallS;
  if (g.loadgenCpuS / g.wallS >= SATURATED) {
    return "**invalid: the load generator saturated its core**";
  }
  if (!valid(g)) {
    return `**invalid: other processes took ${
      Math.round(othersShare(g) * 100)
    }% of the server's core (more than ${OTHERS_MAX * 100}%)**`;
  }
  if (g.mode !== "pinned") {
    return server + load > 1.8 ? "both cores busy" : "";
  }
  if (server >= 0.9) return "server stack CPU-bound";
  if (server + (g.otherCpuS ?? 0) / g.wallS >= 0.9) return "server's core full, shared with others";
  return "neither core saturated";
}

/** Column headers of the table. */
export const HEADER = [
  "mode",
  "workload",
  "server",
  "op",
  "ops/s",
  "p50 ms",
  "p99 ms",
  "max ms",
  "watch delivery p50 / p99 ms: put response → event (put sent → event)",
  "event-loop delay p99 ms (kine metric)",
  "health RPC p99 ms",
  "peak RSS MiB: VmHWM / max VmRSS sampled during the load",
  "server CPU",
  "load gen CPU",
  "notes",
];

/** The one markdown table: a row per workload × server (plus one per op type when several). */
export function table(results: Result[], skips: Skip[]): string {
  const groups = group(results);
  // No ratio where either side measured the load generator rather than the server.
  const etcdOf = (g: Group) => {
    if (g.server === "etcd" || !valid(g)) return undefined;
    const e = groups.find((e) =>
      e.server === "etcd" && e.mode === g.mode && e.workload === g.workload
    );
    return e && valid(e) ? e : undefined;
  };
  const modes = [...new Set(groups.map((g) => g.mode))];
  const workloads = [...new Set(groups.map((g) => g.workload))];
  const lines = [
    `| ${HEADER.join(" | ")} |`,
    `|${HEADER.map(() => "---").join("|")}|`,
  ];
  const row = (cells: string[]) => lines.push(`| ${cells.map(esc).join(" | ")} |`);
  for (const mode of modes) {
    for (const workload of workloads) {
      const gs = groups.filter((g) => g.mode === mode && g.workload === workload)
        .sort((a, b) => serverRank(a.server) - serverRank(b.server));
      for (const g of gs) {
        const e = etcdOf(g);
        const ops = [...g.ops.byOp.keys()];
        const single = ops.length === 1;
        const rate = totalOps(g.ops) / g.rateS;
        const spread = g.roundRates.length > 1
          ? ` ±${
            Math.round(
              (Math.max(...g.roundRates) - Math.min(...g.roundRates)) / 2 / rate * 100,
            )
          }%`
          : "";
        const cpuPct = `${Math.round((g.serverCpuS / g.wallS) * 100)}% of wall`;
        const perRound = (x: Group) => x.serverCpuS / x.rounds;
        const cpu = g.writes > 0
          ? `${num((g.serverCpuS / g.writes) * 1000)} s/1k writes${
            ratio(g.serverCpuS / g.writes, e && e.serverCpuS / e.writes)
          }${databaseShare(g)}, ${cpuPct}`
          : `${num(perRound(g))} s per run${ratio(perRound(g), e && perRound(e))}, ${cpuPct}`;
        const lg = g.loadgenCpuS > 0
          ? `${num(g.loadgenCpuS)} s, ${Math.round((g.loadgenCpuS / g.wallS) * 100)}% of a core`
          : "—";
        const delivery = g.delivery.count
          ? `${num(g.delivery.quantile(0.5))} / ${num(g.delivery.quantile(0.99))}${
            ratio(g.delivery.quantile(0.99), e?.delivery.quantile(0.99))
          } (sent: ${num(g.deliverySent.quantile(0.5))} / ${num(g.deliverySent.quantile(0.99))}${
            ratio(g.deliverySent.quantile(0.99), e?.deliverySent.quantile(0.99))
          })`
          : "";
        const health = g.health.count
          ? num(g.health.quantile(0.99)) + ratio(g.health.quantile(0.99), e?.health.quantile(0.99))
          : "";
        const loopP99 = bucketQuantile(g.loopDelay, 0.99);
        const loop = loopP99 === undefined
          ? ""
          : loopP99 === Infinity
          ? `> ${num(g.loopDelay!.le.at(-2)! * 1000)}`
          : `≤ ${num(loopP99 * 1000)}`;
        const batch = g.batchSize && g.batchSize.count > 0
          ? `mean commit batch ${num(g.batchSize.sum / g.batchSize.count)} txns`
          : "";
        const gaps = g.gapFills && Object.entries(g.gapFills).filter(([, n]) => n > 0);
        const gapNote = gaps === undefined
          ? ""
          : `gap fills: ${
            gaps.length ? gaps.map(([k, n]) => `${k} ${Math.round(n)}`).join(", ") : "none"
          }${
            g.writes > 0
              ? ` (${num(((g.gapFills!.filled ?? 0) / g.writes) * 1000)} filled per 1,000 writes)`
              : ""
          }`;
        const disk = g.disk
          ? `disk: ${num(mib(g.disk.loaded))} MiB loaded and updated${
            ratio(g.disk.loaded, e?.disk?.loaded)
          }${
            g.disk.compacted !== undefined
              ? `, ${num(mib(g.disk.compacted))} MiB after compaction${
                ratio(g.disk.compacted, e?.disk?.compacted)
              }`
              : ""
          }`
          : "";
        const etcdRow = groups.find((x) =>
          x.server === "etcd" && x.mode === g.mode && x.workload === g.workload
        );
        const noRatio = g.server !== "etcd" && valid(g) && etcdRow && !valid(etcdRow)
          ? "no ratios: etcd's row is invalid"
          : "";
        const other = g.otherCpuS === undefined ? undefined : g.otherCpuS / g.wallS;
        const otherNote = other === undefined || other < 0.05
          ? ""
          : `${other >= 0.2 ? "**" : ""}other processes used ${Math.round(other * 100)}% of ${
            g.mode === "pinned" ? "the server's core" : "a core"
          }${other >= 0.2 ? "**" : ""}`;
        const check = g.watchCheck;
        const notes = [
          g.rounds > 1 ? `${g.rounds} rounds` : "",
          g.rate && g.writes ? `${num(g.writes / g.rateS)} writes/s` : "",
          g.rate || !valid(g) ? bound(g) : "",
          noRatio,
          otherNote,
          batch,
          gapNote,
          g.databaseRss ? `database server PSS ${num(mib(g.databaseRss))} MiB` : "",
          disk,
          errorsNote(g.errors),
          check &&
          (check.problems.length
            ? `**watch check failed: ${check.problems.join("; ")}**`
            : `watch check: ${check.watchers} watchers each saw all ${check.writes} writes exactly once`),
          ...g.notes,
        ].filter(Boolean).join("; ");
        const latency = (op: string) => {
          const h = g.ops.get(op);
          const eh = e?.ops.byOp.get(op);
          return [
            g.rate
              ? num(h.count / g.rateS) + ratio(h.count / g.rateS, eh && eh.count / e!.rateS)
              : "—",
            num(h.quantile(0.5)),
            num(h.quantile(0.99)) + ratio(h.quantile(0.99), eh?.quantile(0.99)),
            num(h.max),
          ];
        };
        const serverCells = [
          delivery,
          loop,
          health,
          num(mib(g.peakRss)) + ratio(g.peakRss, e?.peakRss) +
          (g.sampledRss ? ` / ${num(mib(g.sampledRss))}` : ""),
          cpu,
          lg,
          notes,
        ];
        if (single) {
          row([mode, workload, g.server, ops[0], ...latency(ops[0]), ...serverCells]);
          continue;
        }
        const eRate = e && totalOps(e.ops) / e.rateS;
        row([
          mode,
          workload,
          g.server,
          "all",
          g.rate ? num(rate) + spread + ratio(rate, eRate) : "—",
          "",
          "",
          "",
          ...serverCells,
        ]);
        for (const op of ops) row(["", "", "", op, ...latency(op), ...serverCells.map(() => "")]);
      }
    }
    for (const s of skips.filter((s) => s.mode === mode)) {
      const blank = HEADER.slice(5, -1).map(() => "");
      row([mode, "(all)", s.server, "—", "—", ...blank, `not run: ${s.why}`]);
    }
  }
  return lines.join("\n");
}
