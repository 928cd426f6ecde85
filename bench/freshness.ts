/**
 * What a linearizable read costs across servers: two kine processes on one
 * store, a put through A and at once a Range of that key through B,
 * linearizable (it must see the put: B checks the store's newest revision
 * first) then serializable (no check), one pair after another. The figures
 * are what the check adds at p50 and p99. etcd's baseline is one etcd with
 * both clients on it (its ReadIndex on a single member).
 */
import { databaseRoundTrips } from "./db_rtt.ts";
import { Histograms } from "./stats.ts";
import { absorb, measure, type RunContext, type Sample, withFreshStack } from "./harness.ts";

const LINEAR = "linearizable Range through B";
const SERIAL = "serializable Range through B";

/** Targets the freshness check aims at, by backend (the issue's). */
const TARGETS: Record<string, string> = {
  sqlite: "target ≤ 1 ms added at p99",
  postgres: "target ≤ one database round trip added at p99",
};

/** Write through A, read through B: latencies of both reads and what the check adds. */
export function freshness(ctx: RunContext): Promise<Sample[]> {
  const z = ctx.sizes.freshness;
  return withFreshStack(ctx, async (stack, store) => {
    const [a, b = a] = stack.servers;
    const { result, sample } = await measure(ctx, stack, () =>
      ctx.loadgen.call("freshness", {
        writer: a.target,
        reader: b.target,
        count: z.count,
        maxMs: z.maxMs,
      }));
    sample.workload = `freshness: put through A, then Range through B (${z.count} pairs)`;
    sample.rate = false;
    absorb(sample, [result]);
    const ops = new Histograms().merge(sample.ops);
    const added = (q: number) => ops.get(LINEAR).quantile(q) - ops.get(SERIAL).quantile(q);
    sample.figures = {
      "p50 ms added by the freshness check (linearizable − serializable)": added(0.5),
      "p99 ms added by the freshness check (linearizable − serializable)": added(0.99),
    };
    // After the measured phase: its own load stays out of the servers' figures.
    const rtt = ctx.db && store.dbName ? await databaseRoundTrips(ctx.db, store.dbName) : undefined;
    for (const q of rtt ? [0.5, 0.99] : []) {
      const name = `database round trip p${q * 100} ms (SELECT 1 from the bench, no kine)`;
      sample.figures[name] = rtt!.quantile(q);
    }
    if (stack.servers.length === 1) sample.notes.push("baseline: A and B are the same etcd");
    const aim = TARGETS[ctx.backend.kind];
    if (aim) sample.notes.push(aim);
    if (result.writes < z.count) {
      sample.notes.push(`${result.writes} pairs in the ${z.maxMs / 1000} s bound`);
    }
    return [sample];
  }, { replicas: 2 });
}
