/**
 * `deno run -A bench/write_cpu.ts [postgres|mysql]… [--writes N] [--inflight N] [--value-size N]
 * [--watchers N]`:
 * where the CPU of a kube write goes on a network database. Starts a private
 * server (bench/databases.ts), opens the backend in this process, and runs N
 * kube-apiserver writes (a third creates, a third updates, a third deletes)
 * with a fixed number in flight, so they group-commit as under load. Prints
 * the CPU seconds per 1,000 writes of this process (kine's side, no gRPC) and
 * of the database server's process tree, read from /proc before and after
 * (with `--watchers`, as many watches of every key, as the bench's kube mix has):
 * CPU time, unlike wall time, holds on a shared machine. Then a bulk load
 * (txns of 100 puts), measured the same way.
 *
 * @module
 */
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions } from "../lib/mod.ts";
import { defaultConfig } from "../lib/config/parse.ts";
import { createKineMetrics } from "../lib/metrics/mod.ts";
import { type Backend, plainRange, type Txn } from "../lib/backend/types.ts";
import { deleteOp, kubeTxn, putOp, silent } from "./kube_txns.ts";
import { type Engine, startDatabase } from "./databases.ts";
import { flag, forEngines } from "./cpu_cli.ts";
import { cpuSeconds, treeCpuSeconds } from "./procfs.ts";

const WRITES = flag("writes", 6000);
const INFLIGHT = flag("inflight", 32);
const value = new TextEncoder().encode("v".repeat(flag("value-size", 1024)));
const WATCHERS = flag("watchers", 0);

/** Runs `txns` with `inflight` at a time; returns nothing, throws on a failed write. */
async function drive(backend: Backend, txns: (() => Txn)[], inflight = INFLIGHT): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < txns.length) {
      const r = await backend.txn(txns[next++]());
      if (!r.succeeded) throw new Error("a kube write's compare failed");
    }
  };
  await Promise.all(Array.from({ length: inflight }, worker));
}

/** CPU seconds of this process and of the database tree spent in `step`. */
async function measure(dbPid: number, step: () => Promise<void>) {
  const k0 = cpuSeconds(Deno.pid, false);
  const d0 = treeCpuSeconds(dbPid);
  const t0 = performance.now();
  await step();
  return {
    kine: cpuSeconds(Deno.pid, false) - k0,
    db: treeCpuSeconds(dbPid) - d0,
    wall: (performance.now() - t0) / 1000,
  };
}

async function run(engine: Engine, tmp: string): Promise<void> {
  const db = await startDatabase(engine, `${tmp}/db-${engine}`, undefined, `${tmp}/${engine}.log`);
  try {
    const cfg = { ...defaultConfig(), endpoint: db.endpoint("kine_write_cpu") };
    const metrics = createKineMetrics();
    const { backend } = await openBackend(backendOptions(cfg, silent, metrics));
    await backend.start();
    const watches = await Promise.all(
      Array.from({ length: WATCHERS }, () => backend.watch("/", "\0", 0, () => {})),
    );
    try {
      const n = Math.floor(WRITES / 3);
      const key = (i: number) => `/registry/pods/ns-${i % 50}/pod-${i}`;
      const keys = Array.from({ length: n }, (_, i) => key(i));
      /** The CPU of `n` writes, the i-th made by `write` from key i and its mod revision. */
      const phase = async (write: (k: string, rev: number) => Txn) => {
        const revs = await Promise.all(
          keys.map(async (k) => (await backend.range(plainRange(k, ""))).kvs[0]?.modRevision ?? 0),
        );
        return await measure(
          db.pid,
          () => drive(backend, keys.map((k, i) => () => write(k, revs[i]))),
        );
      };
      // warm-up: the connections, the statement shapes
      await drive(
        backend,
        Array.from({ length: 200 }, (_, i) => () => kubeTxn(`/w/${i}`, 0, putOp(`/w/${i}`, value))),
      );
      const c = await phase((k, rev) => kubeTxn(k, rev, putOp(k, value)));
      const u = await phase((k, rev) => kubeTxn(k, rev, putOp(k, value)));
      const d = await phase((k, rev) => kubeTxn(k, rev, deleteOp(k)));
      const per = (m: { kine: number; db: number }, count: number) =>
        `kine ${(m.kine / count * 1000).toFixed(3)} s, db ${(m.db / count * 1000).toFixed(3)} s`;
      const all = { kine: c.kine + u.kine + d.kine, db: c.db + u.db + d.db };
      console.log(`${engine}: CPU per 1,000 kube writes: ${per(all, 3 * n)}`);
      // The watch's reads of rows (kine_watch_rows_read_total), warm-up and reads of revisions included.
      const read = metrics.watchRowsRead.get();
      console.log(`  rows the watch read back: ${(read / (3 * n + 200)).toFixed(2)} per write`);
      console.log(`  create ${per(c, n)} | update ${per(u, n)} | delete ${per(d, n)}`);
      console.log(`  wall ${(3 * n / (c.wall + u.wall + d.wall)).toFixed(0)} writes/s (noisy)`);
      // Bulk load: txns of 100 puts, 16 in flight (as the bench's preload).
      const txns = 64;
      const load = (t: number) => () => ({
        compare: [],
        success: Array.from({ length: 100 }, (_, i) => putOp(`/bulk/${t}/${i}`, value)),
        failure: [],
      });
      const t0 = performance.now();
      const b = await measure(
        db.pid,
        () => drive(backend, Array.from({ length: txns }, (_, t) => load(t)), 16),
      );
      const rate = (txns * 100 / ((performance.now() - t0) / 1000)).toFixed(0);
      console.log(`  bulk load: CPU per 1,000 puts: ${per(b, txns * 100)}; ${rate} puts/s (noisy)`);
    } finally {
      for (const w of watches) w.cancel();
      await backend.close();
    }
  } finally {
    await db.stop();
  }
}

await forEngines<Engine>("kine-write-cpu-", ["postgres", "mysql"], run);
