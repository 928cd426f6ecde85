/**
 * (8) The footprint: warm start on an empty store (spawn → first Range served, Deno's caches
 * already filled by earlier starts), resident memory at rest on it, and again at rest after
 * a bulk load of 100,000 keys (256 B values). Each server gets a fresh store.
 */
import { cpuSeconds, memory } from "./procfs.ts";
import { Histogram } from "./stats.ts";
import {
  newStore,
  preload,
  removeStore,
  type RunContext,
  type Sample,
  start,
  stopStack,
} from "./harness.ts";

const VALUE_BYTES = 256;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A row of one measured value of the server `pid`: a start time, or its
 * resident size now (as `rss.last`); its CPU and wall time count from `spawnedAt`.
 */
export function row(
  server: string,
  workload: string,
  pid: number,
  spawnedAt: number,
  o: { startMs?: number; notes?: string[] } = {},
): Sample {
  const { rss, hwm } = memory(pid);
  const ops: Sample["ops"] = {};
  if (o.startMs !== undefined) {
    const h = new Histogram();
    h.add(o.startMs);
    ops.start = h.toJSON();
  }
  return {
    workload,
    server,
    // Since the spawn, so that the CPU cell's share of wall time is the server's mean load.
    wallS: (performance.now() - spawnedAt) / 1000,
    ops,
    rate: false,
    writes: 0,
    // Everything the server used since it was spawned: to its first answer, or to rest.
    serverCpuS: cpuSeconds(pid),
    loadgenCpuS: 0,
    peakRss: hwm,
    rss: { peak: rss, last: rss },
    errors: {},
    notes: o.notes ?? [],
  };
}

/** Warm start, idle RSS and RSS after the bulk load, as three rows. */
export async function footprint(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.footprint;
  const keys = z.keys >= 1000 ? `${z.keys / 1000}k` : String(z.keys);
  const store = await newStore(ctx);
  try {
    // `start` times spawn → first Range on a fresh connection, as the cold start row does.
    const spawnedAt = performance.now();
    const { stack, coldMs } = await start(ctx, store);
    try {
      const server = stack.servers[0];
      const name = stack.name;
      const samples = [
        row(
          name,
          "footprint: warm start, empty store (spawn → first Range)",
          server.pid,
          spawnedAt,
          {
            startMs: coldMs,
          },
        ),
      ];
      await sleep(z.settleMs);
      const idle = row(name, `footprint: RSS at rest, empty store`, server.pid, spawnedAt);
      samples.push(idle);
      const loaded = await preload(ctx, stack, "scale", z.keys, VALUE_BYTES);
      await sleep(z.settleMs);
      const after = row(
        name,
        `footprint: RSS at rest after ${keys} keys (${VALUE_BYTES} B)`,
        server.pid,
        spawnedAt,
      );
      const perKey = (after.rss.last - idle.rss.last) / loaded.loaded;
      after.notes.push(`${Math.round(perKey)} B per key over the empty store's RSS`);
      samples.push(after);
      return samples;
    } finally {
      await stopStack(stack);
    }
  } finally {
    await removeStore(ctx, store);
  }
}
