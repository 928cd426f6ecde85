/**
 * `deno run -A bench/read_cpu.ts [sqlite|postgres|mysql]… [--keys N] [--rounds N]`:
 * where the CPU of a list goes. Opens the backend in this process (SQLite in
 * a temporary directory, the network engines on a private server from
 * bench/databases.ts), loads N keys of 512 B, then lists them the bench's two
 * ways: paged by 500 (as a kube List) and unpaged (the translator's pages of
 * 1,000), each encoded as the server encodes it. Prints the CPU ms of this
 * process and of the database tree per list, the median over the rounds:
 * CPU time, unlike wall time, holds on a shared machine.
 *
 * @module
 */
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions } from "../lib/mod.ts";
import { defaultConfig } from "../lib/config/parse.ts";
import { type Backend, plainRange } from "../lib/backend/types.ts";
import { RangeEncoder } from "../lib/translator/range_codec.ts";
import { putOp, silent } from "./kube_txns.ts";
import { type Engine, startDatabase } from "./databases.ts";
import { flag, forEngines } from "./cpu_cli.ts";
import { cpuUsage } from "node:process";
import { treeCpuSeconds } from "./procfs.ts";

const KEYS = flag("keys", 10_000);
const ROUNDS = flag("rounds", 15);
const value = new Uint8Array(512).fill(118);
const PREFIX = "/registry/pods/";

/** Lists the prefix in pages of `limit`, each page's kvs encoded; returns the kvs seen. */
async function list(backend: Backend, limit: number): Promise<number> {
  const encoder = new RangeEncoder();
  let key = PREFIX;
  let revision = 0;
  let n = 0;
  for (;;) {
    const page = await backend.range({
      ...plainRange(key, PREFIX.slice(0, -1) + "0"),
      limit,
      revision,
      skipCount: revision > 0,
    });
    encoder.add(page.kvs);
    n += page.kvs.length;
    revision = page.revision;
    if (!page.more || page.nextKey === undefined) break;
    key = page.nextKey;
  }
  encoder.finish(revision, false, n);
  return n;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** This process's CPU ms (getrusage: finer than /proc's clock ticks). */
const ownCpu = () => {
  const u = cpuUsage();
  return (u.user + u.system) / 1000;
};

/**
 * Mean CPU ms (this process, the database tree: its clock ticks are coarse,
 * so a mean) and median wall ms of `step` over the rounds.
 */
async function measure(dbPid: number | undefined, step: () => Promise<unknown>) {
  const kine: number[] = [];
  const db: number[] = [];
  const wall: number[] = [];
  await step(); // warm-up
  for (let i = 0; i < ROUNDS; i++) {
    const d0 = dbPid ? treeCpuSeconds(dbPid) : 0;
    const k0 = ownCpu();
    const t0 = performance.now();
    await step();
    wall.push(performance.now() - t0);
    kine.push(ownCpu() - k0);
    db.push(dbPid ? (treeCpuSeconds(dbPid) - d0) * 1000 : 0);
  }
  return `kine CPU ${mean(kine).toFixed(1)} ms, db CPU ${mean(db).toFixed(1)} ms, ` +
    `wall ${median(wall).toFixed(1)} ms (noisy)`;
}

async function run(engine: Engine | "sqlite", tmp: string): Promise<void> {
  const db = engine === "sqlite"
    ? undefined
    : await startDatabase(engine, `${tmp}/db-${engine}`, undefined, `${tmp}/${engine}.log`);
  try {
    const endpoint = db ? db.endpoint("kine_read_cpu") : `sqlite://${tmp}/state.db`;
    const { backend } = await openBackend(backendOptions({ ...defaultConfig(), endpoint }, silent));
    await backend.start();
    try {
      for (let t = 0; t < KEYS / 100; t++) {
        const success = Array.from(
          { length: 100 },
          (_, i) => putOp(`${PREFIX}ns/${String(t * 100 + i).padStart(7, "0")}`, value),
        );
        await backend.txn({ compare: [], success, failure: [] });
      }
      if (await list(backend, 0) !== KEYS) throw new Error("the list missed keys");
      console.log(`${engine}, ${KEYS} keys:`);
      console.log(`  paged by 500: ${await measure(db?.pid, () => list(backend, 500))}`);
      console.log(`  unpaged:      ${await measure(db?.pid, () => list(backend, 1000))}`);
    } finally {
      await backend.close();
    }
  } finally {
    await db?.stop();
  }
}

await forEngines<Engine | "sqlite">("kine-read-cpu-", ["sqlite", "postgres", "mysql"], run);
