/**
 * A store of a million kube-shaped keys (`/registry/scale/ns-<i%100>/obj-<i>`,
 * 128 B values so that it loads in bounded time): its bulk load (the bench's
 * txns of 100 puts, 16 in flight; single puts where a backend has no multi-key
 * txns), the server's RSS at rest after it, then a count-only Range over all
 * keys and the first page of 500 (what a paged list by the apiserver asks
 * first), five times each, repeated until the phase lasts 3 s (kine answers
 * in milliseconds: a shorter phase is below what /proc's CPU ticks can tell
 * apart). One fresh store per server, once per run.
 */
import { row } from "./footprint.ts";
import { databaseMemory } from "./server.ts";
import {
  absorb,
  bulkNotes,
  measure,
  preload,
  type RunContext,
  type Sample,
  target,
  withFreshStack,
} from "./harness.ts";
import { count } from "./workloads.ts";

const PREFIX = "/registry/scale/";
/** The count and first-page phase lasts at least this long (rounds of five of each). */
const MIN_PHASE_MS = 3000;
/** …and takes at most this many rounds. */
const MAX_ROUNDS = 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bulk load, RSS at rest, count-only and first-page times on `keys` keys. */
export function million(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.million;
  const n = count(z.keys);
  const spawnedAt = performance.now();
  return withFreshStack(ctx, async (stack) => {
    const server = stack.servers[0];
    const load = await measure(
      ctx,
      stack,
      () => preload(ctx, stack, "scale", z.keys, z.valueSize, z.maxMs),
    );
    const loaded: number = load.result.loaded;
    load.sample.workload = `${n} keys: bulk load (txns of 100 puts, ${z.valueSize} B)`;
    absorb(load.sample, [load.result]);
    load.sample.notes.push(...bulkNotes(ctx, loaded, z.keys, z.maxMs));
    await sleep(z.settleMs);
    const rest = row(
      stack.name,
      `${n} keys: RSS at rest after the load (${z.settleMs / 1000} s idle)`,
      server.pid,
      spawnedAt,
    );
    if (stack.db) {
      rest.notes.push(`database server PSS ${Math.round(databaseMemory(stack) / 2 ** 20)} MiB`);
    }
    const listings = [
      { name: `count ${n}`, prefix: PREFIX, mode: "count", expect: loaded },
      { name: "first page of 500", prefix: PREFIX, mode: "first", expect: Math.min(500, loaded) },
    ];
    // Rounds of five until the phase lasts MIN_PHASE_MS: five fast answers took 0.14 s, and over
    // that /proc's 10 ms ticks (server CPU against the core's busy time) read one or two ticks
    // of kernel and probe work as 7–14 % "taken by other processes", which voided the row.
    const lists = await measure(ctx, stack, async () => {
      const rounds = [];
      const t0 = performance.now();
      do {
        rounds.push(
          await ctx.loadgen.call("listings", { target: target(stack), reps: 5, listings }),
        );
      } while (performance.now() - t0 < MIN_PHASE_MS && rounds.length < MAX_ROUNDS);
      return rounds;
    });
    lists.sample.workload = `${n} keys: count-only Range and first page of 500`;
    lists.sample.rate = false;
    absorb(lists.sample, lists.result);
    for (const s of [rest, lists.sample]) {
      if (loaded < z.keys) s.notes.push(...bulkNotes(ctx, loaded, z.keys, z.maxMs).slice(-1));
    }
    return [load.sample, rest, lists.sample];
  });
}
