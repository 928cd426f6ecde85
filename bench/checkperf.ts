/**
 * `etcdctl check perf`, etcd's own qualification of a datastore, run by
 * Debian's etcdctl 3.4 against each server: its verdicts, the throughput and
 * slowest request it prints (it prints no percentiles), one fresh store per
 * load. etcdctl writes for 60 s, with binary keys, then deletes its prefix;
 * the bench kills it after `maxMs`. etcdctl is the load generator here: it runs
 * on the generator's core, and its CPU decides whether a row is valid.
 */
import { spawn } from "./process.ts";
import { cpuSeconds } from "./procfs.ts";
import { measure, type RunContext, type Sample, target, withFreshStack } from "./harness.ts";

/** What etcdctl 3.4 says of each load: writes/s asked for and clients it writes with. */
const LOADS: Record<string, string> = {
  s: "150 writes/s, 50 clients",
  m: "1,000 writes/s, 200 clients",
  l: "8,000 writes/s, 500 clients",
  xl: "15,000 writes/s, 1,000 clients",
};

/** CPU of this process's children that exited and were reaped (etcdctl once it is done). */
const reapedCpuSeconds = () => cpuSeconds(Deno.pid) - cpuSeconds(Deno.pid, false);

/**
 * The figures of etcdctl's report (3.4 prints the slowest request and the
 * standard deviation, no percentiles), each present only where it printed it.
 */
export function parseCheckPerf(out: string): Record<string, number | string> {
  const figures: Record<string, number | string> = {};
  const throughput = /(PASS|FAIL): Throughput (?:is|too low:) (\d+) writes\/s/.exec(out);
  if (throughput) figures["check perf writes/s"] = Number(throughput[2]);
  // A failed latency verdict has no "FAIL:" before it.
  const slowest = /Slowest request took (?:too long: )?([\d.]+)s/.exec(out);
  if (slowest) figures["check perf slowest request ms"] = Number(slowest[1]) * 1000;
  const stddev = /Stddev (?:is|too high:) ([\d.]+)s/.exec(out);
  if (stddev) figures["check perf stddev ms"] = Number(stddev[1]) * 1000;
  const verdict = /^(PASS|FAIL)\s*$/m.exec(out);
  figures["check perf verdict"] = verdict?.[1] ?? "no verdict";
  return figures;
}

/** One `etcdctl check perf --load=<load>` run on a fresh store of the context's backend. */
function checkOnce(ctx: RunContext, load: string): Promise<Sample[]> {
  const z = ctx.sizes.checkperf;
  return withFreshStack(ctx, async (stack, store) => {
    const log = `${store.dir}/etcdctl-${load}.log`;
    let timedOut = false;
    const { sample } = await measure(ctx, stack, async () => {
      const child = spawn("etcdctl", [
        `--endpoints=${target(stack)}`,
        "check",
        "perf",
        `--load=${load}`,
      ], {
        cpus: ctx.loadCpus,
        logFile: log,
        env: { ETCDCTL_API: "3" },
      });
      const timer = setTimeout(() => {
        timedOut = true;
        child.stop(1000);
      }, z.maxMs);
      try {
        return await child.exited;
      } finally {
        clearTimeout(timer);
      }
    }, () => ctx.loadgen.cpuSeconds() + reapedCpuSeconds());
    // The progress bar redraws with carriage returns: keep its last state only.
    const out = (await Deno.readTextFile(log)).replace(/[^\n]*\r/g, "");
    sample.workload = `etcdctl check perf --load=${load} (${LOADS[load] ?? "?"}, 60 s)`;
    sample.rate = false;
    sample.figures = parseCheckPerf(out);
    if (timedOut) sample.errors[`etcdctl killed after ${z.maxMs / 1000} s`] = 1;
    for (const m of out.matchAll(/FAIL: ERROR\((.*)\) -> (\d+)/g)) {
      sample.errors[`etcdctl: ${m[1]}`] = Number(m[2]);
    }
    const verdicts = out.match(/^(PASS: |FAIL: |Slowest|Stddev).*$/gm) ?? [];
    sample.notes.push(`etcdctl: ${verdicts.join("; ") || "no report"}`);
    return [sample];
  });
}

/** `etcdctl check perf` with each load of the sizes, one after the other. */
export async function checkPerf(ctx: RunContext): Promise<Sample[]> {
  const samples: Sample[] = [];
  for (const load of ctx.sizes.checkperf.loads) samples.push(...await checkOnce(ctx, load));
  return samples;
}
