/**
 * Where the time of several kine servers on one store goes: three daemons on
 * a fresh store of the shared test databases (or a SQLite file), the load
 * generator's `delivery` job (closed loop, then paced), and per 1,000 writes
 * the CPU of the daemons and of the database's backends serving them, every
 * SQL statement by name, the poll loop's wake-ups by source and its gap
 * fills. Counts and CPU per write stay meaningful on a busy machine, where
 * wall-clock rates do not.
 *
 *   deno run -A bench/ha_probe.ts --backend postgres [--ms 5000] [--writers 64] [--rate 1000]
 *     [--kine /path/to/other/checkout/main.ts] [--private] [--phases closed,paced]
 *
 * `--private` runs the database on a server of its own (as the bench does),
 * whose whole CPU is then counted, MariaDB's included.
 */
import { parseArgs } from "node:util";
import postgres from "postgres";
import { KINE_MAIN, spawnKine } from "./kine.ts";
import { LoadGen } from "./loadgen.ts";
import { killAll } from "./process.ts";
import { cpuSeconds, initClockTicks, treeCpuSeconds } from "./procfs.ts";
import { type Engine, startDatabase } from "./databases.ts";
import { Histogram } from "./stats.ts";
import type { Server } from "./server.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    backend: { type: "string", default: "postgres" },
    ms: { type: "string", default: "5000" },
    writers: { type: "string", default: "64" },
    rate: { type: "string", default: "1000" },
    servers: { type: "string", default: "3" },
    kine: { type: "string", default: KINE_MAIN },
    private: { type: "boolean", default: false },
    phases: { type: "string", default: "closed,paced" },
  },
});
const PG = "postgres://postgres@127.0.0.1:5432";
const name = `ha_probe_${Date.now()}`;
const dir = await Deno.makeTempDir({ prefix: "ha-probe-" });
const own = args.private && args.backend !== "sqlite"
  ? await startDatabase(args.backend as Engine, `${dir}/db`, undefined, `${dir}/db.log`)
  : undefined;
const endpoint = own
  ? own.endpoint(name)
  : args.backend === "postgres"
  ? `${PG}/${name}?sslmode=disable`
  : args.backend === "mysql"
  ? `mysql://root@tcp(127.0.0.1:3306)/${name}`
  : `sqlite://${dir}/state.db`;

/**
 * CPU seconds of the database: the whole private server, or the shared
 * PostgreSQL's backends connected to our database (0 for the shared MariaDB).
 */
async function dbCpu(): Promise<number> {
  if (own) return treeCpuSeconds(own.pid);
  if (args.backend !== "postgres") return 0;
  const sql = postgres(`${PG}/postgres`, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`SELECT pid FROM pg_stat_activity WHERE datname = ${name}`;
    let total = 0;
    for (const r of rows) {
      try {
        total += cpuSeconds(Number(r.pid), false);
      } catch { /* gone meanwhile */ }
    }
    return total;
  } finally {
    await sql.end();
  }
}

/** Every counter sample of the daemons' /metrics, summed over the servers, by "name{labels}". */
async function counters(servers: Server[]): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  for (const s of servers) {
    const text = await (await fetch(s.metricsUrl!)).text();
    for (const line of text.split("\n")) {
      const m =
        /^(kine_sql_total|kine_watch_wakeups_total|kine_watch_rows_read_total|kine_gap_fill_total|kine_insert_errors_total|kine_txn_batch_size_(?:count|sum)|kine_sql_time_seconds_sum|kine_watch_gap_seconds_(?:count|sum|bucket))(\{[^}]*\})? (\S+)$/
          .exec(line);
      if (!m) continue;
      const key = m[1] + (m[2] ?? "");
      sums.set(key, (sums.get(key) ?? 0) + Number(m[3]));
    }
  }
  return sums;
}

await initClockTicks();
const servers: Server[] = [];
const loadgen = await LoadGen.start(undefined, `${dir}/loadgen.log`);
try {
  for (let i = 0; i < Number(args.servers); i++) {
    const s = spawnKine(`kine${i}`, endpoint, undefined, `${dir}/kine${i}.log`, args.kine);
    servers.push(s);
    await waitReady(s);
  }
  const phases = args.phases.split(",");
  for (const paced of [false, true]) {
    if (!phases.includes(paced ? "paced" : "closed")) continue;
    const before = await counters(servers);
    const cpu0 = servers.map((s) => cpuSeconds(s.pid, false));
    const db0 = await dbCpu();
    const r = await loadgen.call("delivery", {
      targets: servers.map((s) => s.target),
      rate: paced ? Number(args.rate) : 0,
      concurrency: paced ? 0 : Number(args.writers),
      durationMs: Number(args.ms),
      valueSize: 256,
      prefix: paced ? "/ha-paced/" : "/ha/",
      crossOnly: true,
    });
    const after = await counters(servers);
    const kineCpu = servers.reduce((t, s, i) => t + cpuSeconds(s.pid, false) - cpu0[i], 0);
    const db = (await dbCpu()) - db0;
    const writes = r.writes as number;
    const per1k = (n: number) => (n * 1000 / writes).toFixed(1);
    const delivery = Histogram.from(r.delivery);
    console.log(
      `\n== ${args.backend} ${paced ? `paced ${args.rate}/s` : `closed loop ${args.writers}`}: ` +
        `${writes} writes, ${(writes * 1000 / r.writeMs).toFixed(0)}/s, delivery p50 ` +
        `${delivery.quantile(0.5).toFixed(2)} p90 ${delivery.quantile(0.9).toFixed(1)} ` +
        `p99 ${delivery.quantile(0.99).toFixed(1)} max ${delivery.max.toFixed(0)} ms, ` +
        `missed ${r.missedEvents}, dup ${r.duplicates}, errors ${JSON.stringify(r.errors)}`,
    );
    console.log(
      `   CPU per 1k writes: kine ${(kineCpu * 1000 / writes).toFixed(3)} s, ` +
        `db backends ${(db * 1000 / writes).toFixed(3)} s`,
    );
    const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0).sort();
    const gap = (k: string) => rows.find(([key]) => key === k)?.[1] ?? 0;
    const gaps = gap("kine_watch_gap_seconds_count");
    if (gaps > 0) {
      const over = (le: string) =>
        (100 * (1 - gap(`kine_watch_gap_seconds_bucket{le="${le}"}`) / gaps)).toFixed(0);
      console.log(
        `   gaps stood: ${per1k(gaps)} ids per 1k writes, mean ` +
          `${(gap("kine_watch_gap_seconds_sum") * 1000 / gaps).toFixed(1)} ms, ` +
          `${over("0.01")} % > 10 ms, ${over("0.05")} % > 50 ms`,
      );
    }
    for (const [k, v] of rows) {
      if (k.startsWith("kine_watch_gap_seconds")) continue;
      if (!k.startsWith("kine_sql_time_seconds_sum")) {
        console.log(`   ${k}: ${per1k(v)} per 1k writes`);
        continue;
      }
      const n = after.get(k.replace("time_seconds_sum", "total"))! -
        (before.get(k.replace("time_seconds_sum", "total")) ?? 0);
      console.log(`   ${k}: mean ${(v * 1000 / n).toFixed(2)} ms`);
    }
  }
} finally {
  await loadgen.close();
  for (const s of servers) await s.stop();
  // A private server's data goes with the temp directory.
  if (own) await own.stop();
  await killAll();
  if (!own && args.backend === "postgres") {
    const sql = postgres(`${PG}/postgres`, { max: 1, onnotice: () => {} });
    await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await sql.end();
  } else if (!own && args.backend === "mysql") {
    const mysql = (await import("mysql2/promise")).default;
    const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
    await conn.query(`DROP DATABASE IF EXISTS ${name}`);
    await conn.end();
  }
  await Deno.remove(dir, { recursive: true });
}

/** Waits until the daemon answers /metrics. */
async function waitReady(s: Server): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      const res = await fetch(s.metricsUrl!);
      await res.body?.cancel();
      if (res.ok) return;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${s.name} did not start`);
}
