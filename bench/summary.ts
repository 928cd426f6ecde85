/**
 * The short table at the top of a results file: one line per workload and
 * measure, one column per server, ratios to etcd. The full table below it
 * has the latencies, CPU and notes behind each cell.
 */
import { type Group, group, num, type Result, serverRank, valid } from "./report.ts";
import { Histogram } from "./stats.ts";

/** Every operation's latencies in one histogram. */
function allOps(g: Group): Histogram {
  const all = new Histogram();
  for (const h of g.ops.byOp.values()) all.merge(h);
  return all;
}

/** One line of the summary: what it shows of a group (a figure may be a word: PASS). */
interface Measure {
  label: string;
  value: (g: Group) => number | string | undefined;
}

/** The measures worth a line for a workload, judged from what its groups hold. */
function measures(gs: Group[]): Measure[] {
  const g = gs[0];
  const out: Measure[] = [];
  if (g.rate) {
    // Writes are what the targets are stated in (objects/s for bulk loads).
    out.push({ label: "writes/s", value: (x) => x.writes / x.rateS });
    if (g.workload.startsWith("kube mix")) {
      out.push({
        label: "p99 ms, all operations",
        value: (x) => allOps(x).quantile(0.99),
      });
      out.push({ label: "peak RSS MiB", value: (x) => x.peakRss / 2 ** 20 });
    }
  } else {
    // Every server's operations: one may have one the others lack (an unfinished compaction).
    for (const op of new Set(gs.flatMap((x) => [...x.ops.byOp.keys()]))) {
      // A compaction's cost to writers is its longest stall, not a percentile.
      const stall = op.startsWith("put during");
      const once = gs.every((x) => (x.ops.byOp.get(op)?.count ?? 0) <= 1);
      out.push({
        label: `${op} ${stall ? "longest " : once ? "" : "p99 "}ms`,
        value: (x) => {
          const h = x.ops.byOp.get(op);
          return h?.count ? (stall ? h.max : h.quantile(0.99)) : undefined;
        },
      });
    }
  }
  for (const name of new Set(gs.flatMap((x) => Object.keys(x.figures ?? {})))) {
    out.push({ label: name, value: (x) => x.figures?.[name] });
  }
  // A row of a resident size alone (bench/footprint.ts): no operations, one VmRSS reading.
  if (!g.rate && g.ops.byOp.size === 0 && g.sampledRss > 0 && !g.figures) {
    out.push({ label: "RSS MiB (VmRSS)", value: (x) => x.sampledRss / 2 ** 20 });
  }
  if (gs.some((x) => x.delivery.count > 0)) {
    out.push({
      label: "watch delivery p99 ms (put response → event)",
      value: (x) => x.delivery.count ? x.delivery.quantile(0.99) : undefined,
    });
  }
  if (gs.some((x) => x.disk)) {
    out.push({
      label: "disk MiB after load and updates",
      value: (x) => x.disk ? x.disk.loaded / 2 ** 20 : undefined,
    });
  }
  if (gs.some((x) => x.disk?.compacted !== undefined)) {
    out.push({
      label: "disk MiB after compaction",
      value: (x) => x.disk?.compacted !== undefined ? x.disk.compacted / 2 ** 20 : undefined,
    });
  }
  return out;
}

const base = (server: string) => server.replace(/^\d+× /, "");

/** Words of the notes of rows measured on fewer objects than asked (bench/harness.ts). */
export const PARTIAL = "objects loaded";

/**
 * etcd 3.4 has no RangeStream: where a workload streams (and so has no etcd
 * row), etcd's paged listing of the same keys is the baseline, each measure
 * matched by its label.
 */
function pagedBaseline(
  groups: Group[],
  mode: string,
  workload: string,
): { etcd: Group; measures: Measure[] } | undefined {
  if (!workload.includes("RangeStream")) return undefined;
  const paged = workload.replace("RangeStream", "paged");
  const etcd = groups.find((g) => g.mode === mode && g.workload === paged && g.server === "etcd");
  return etcd && { etcd, measures: measures([etcd]) };
}

/**
 * Markdown: per mode, a line per workload × measure; a cell is the value and
 * its ratio to etcd's, or says "invalid" where the load generator saturated
 * its core on either side.
 */
export function summary(results: Result[]): string {
  const groups = group(results).filter((g) => !g.workload.endsWith("(failed)"));
  const servers = [...new Set(groups.map((g) => base(g.server)))]
    .sort((a, b) => serverRank(a) - serverRank(b));
  const lines = [
    `| mode | workload | measure | ${servers.join(" | ")} |`,
    `|---|---|---|${servers.map(() => "---").join("|")}|`,
  ];
  for (const mode of new Set(groups.map((g) => g.mode))) {
    for (const workload of new Set(groups.map((g) => g.workload))) {
      const gs = groups.filter((g) => g.mode === mode && g.workload === workload);
      if (!gs.length) continue;
      const own = gs.find((g) => g.server === "etcd");
      const stand = own ? undefined : pagedBaseline(groups, mode, workload);
      for (const m of measures(gs)) {
        const pagedLabel = m.label.replace("RangeStream", "paged");
        const paged = stand?.measures.find((x) => x.label === pagedLabel);
        const etcd = own ?? (paged && stand!.etcd);
        const valueOf = (g: Group) => g === etcd && paged ? paged.value(g) : m.value(g);
        const cells = servers.map((server) => {
          const g = server === "etcd" ? etcd : gs.find((x) => base(x.server) === server);
          const v = g && valueOf(g);
          if (!g || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "";
          const shown = (typeof v === "number" ? num(v) : v) +
            (g.notes.some((n) => n.includes(PARTIAL)) ? " †" : "");
          if (!valid(g)) return `${shown} (invalid)`;
          if (g === etcd || !etcd || typeof v === "string") return shown;
          const e = valueOf(etcd);
          if (!valid(etcd)) return `${shown} (etcd invalid)`;
          return typeof e === "number" && e > 0 ? `${shown} (${(v / e).toFixed(2)}×)` : shown;
        });
        const name = workload.replaceAll("|", "\\|");
        const label = paged
          ? `${m.label} (etcd: ${pagedLabel}, limit 500, as 3.4 has no RangeStream)`
          : m.label;
        lines.push(`| ${mode} | ${name} | ${label} | ${cells.join(" | ")} |`);
      }
    }
  }
  if (lines.some((l) => l.includes(" †"))) {
    lines.push("", "† fewer objects than asked (a bulk load ran out of time): see the notes below");
  }
  return lines.join("\n");
}
