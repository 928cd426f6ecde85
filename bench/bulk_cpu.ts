/**
 * `deno run -A bench/bulk_cpu.ts [postgres|mysql|sqlite]… [--txns N] [--value-size N] [--rounds N]`:
 * the CPU of bulk loads alone (txns of 100 puts, 16 in flight, as the bench's
 * preload), split between kine's process (no gRPC) and the database
 * server's process tree, per 1,000 puts, read from /proc; SQLite runs in
 * kine's process. `--rounds` repeats the load on new keys in the same
 * backend and prints each round.
 *
 * @module
 */
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions } from "../lib/mod.ts";
import { defaultConfig } from "../lib/config/parse.ts";
import { createKineMetrics } from "../lib/metrics/mod.ts";
import type { Backend, Txn } from "../lib/backend/types.ts";
import { putOp, silent } from "./kube_txns.ts";
import { type Engine, startDatabase } from "./databases.ts";
import { flag, forEngines } from "./cpu_cli.ts";
import { cpuSeconds, treeCpuSeconds } from "./procfs.ts";

const TXNS = flag("txns", 200);
const ROUNDS = flag("rounds", 3);
const value = new TextEncoder().encode("v".repeat(flag("value-size", 1024)));

async function drive(backend: Backend, txns: (() => Txn)[], inflight: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < txns.length) await backend.txn(txns[next++]());
  };
  await Promise.all(Array.from({ length: inflight }, worker));
}

async function run(engine: Engine | "sqlite", tmp: string): Promise<void> {
  const db = engine === "sqlite"
    ? null
    : await startDatabase(engine, `${tmp}/db-${engine}`, undefined, `${tmp}/${engine}.log`);
  try {
    const endpoint = db ? db.endpoint("kine_bulk_cpu") : `sqlite://${tmp}/kine.db`;
    const cfg = { ...defaultConfig(), endpoint };
    const { backend } = await openBackend(backendOptions(cfg, silent, createKineMetrics()));
    await backend.start();
    try {
      const load = (r: number, t: number) => () => ({
        compare: [],
        success: Array.from({ length: 100 }, (_, i) => putOp(`/bulk/${r}/${t}/${i}`, value)),
        failure: [],
      });
      await drive(backend, Array.from({ length: 16 }, (_, t) => load(-1, t)), 16);
      for (let r = 0; r < ROUNDS; r++) {
        const k0 = cpuSeconds(Deno.pid, false);
        const d0 = db ? treeCpuSeconds(db.pid) : 0;
        const t0 = performance.now();
        await drive(backend, Array.from({ length: TXNS }, (_, t) => load(r, t)), 16);
        const wall = (performance.now() - t0) / 1000;
        const kine = cpuSeconds(Deno.pid, false) - k0;
        const dbs = db ? treeCpuSeconds(db.pid) - d0 : 0;
        const per = 1000 / (TXNS * 100);
        console.log(
          `${engine} round ${r}: per 1,000 puts kine ${(kine * per).toFixed(3)} s + db ${
            (dbs * per).toFixed(3)
          } s = ${((kine + dbs) * per).toFixed(3)} s; ${(TXNS * 100 / wall).toFixed(0)} puts/s`,
        );
      }
    } finally {
      await backend.close();
    }
  } finally {
    await db?.stop();
  }
}

await forEngines<Engine | "sqlite">("kine-bulk-cpu-", ["sqlite", "postgres", "mysql"], run);
