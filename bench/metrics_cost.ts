/**
 * `deno run -A bench/metrics_cost.ts`: what one metric update costs on the
 * hot path with kine's own registry (lib/metrics/registry.ts) and with the
 * pinned prom-client, for the shapes kine uses on every SQL statement and
 * every RPC, and what one scrape of both costs. It is why kine keeps its own
 * registry (see docs/flow.md, "Metrics").
 *
 * @module
 */
import client from "prom-client";
import { Registry, SQL_TIME_BUCKETS } from "../lib/metrics/mod.ts";

const N = 1_000_000;
const NAMES = ["get_current_sql", "list_sql", "insert_sql", "fill_sql"];
const LABELS = ["name", "error_code"] as const;

function perOp(fn: (i: number) => void): number {
  for (let i = 0; i < N / 10; i++) fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < N; i++) fn(i);
  return ((performance.now() - t0) * 1e6) / N;
}

const ours = new Registry();
const oc = ours.counter({ name: "kine_sql_total", help: "h", labelNames: LABELS });
const oh = ours.histogram({
  name: "kine_sql_time_seconds",
  help: "h",
  labelNames: LABELS,
  buckets: SQL_TIME_BUCKETS,
});
const prom = new client.Registry();
const pc = new client.Counter({
  name: "kine_sql_total",
  help: "h",
  labelNames: [...LABELS],
  registers: [prom],
});
const ph = new client.Histogram({
  name: "kine_sql_time_seconds",
  help: "h",
  labelNames: [...LABELS],
  buckets: [...SQL_TIME_BUCKETS],
  registers: [prom],
});

const rows: [string, number, number][] = [
  [
    "counter labels(name, code).inc()",
    perOp((i) => oc.labels(NAMES[i & 3], "").inc()),
    perOp((i) => pc.labels(NAMES[i & 3], "").inc()),
  ],
  [
    "histogram labels(name, code).observe()",
    perOp((i) => oh.labels(NAMES[i & 3], "").observe(0.003)),
    perOp((i) => ph.labels(NAMES[i & 3], "").observe(0.003)),
  ],
];
const scrape = async (render: () => unknown) => {
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) await render();
  return ((performance.now() - t0) / 100) * 1e6;
};
rows.push([
  "one scrape of both families",
  await scrape(() => ours.render()),
  await scrape(() => prom.metrics()),
]);

console.log("| operation | kine's registry, ns | prom-client, ns | ratio |");
console.log("|---|---|---|---|");
for (const [op, a, b] of rows) {
  console.log(`| ${op} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(b / a).toFixed(1)}× |`);
}
