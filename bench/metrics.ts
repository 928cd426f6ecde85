/**
 * Our daemon's own Prometheus metrics, scraped from `--metrics-bind-address`
 * before and after a measured phase: event-loop delay and group-commit batch
 * size. etcd has no such metrics; its samples carry none.
 */

/** One histogram family: upper bounds (ascending, last `Infinity`), cumulative counts, sum. */
export interface PromHistogram {
  le: number[];
  /** Cumulative count per bucket, same order as `le`. */
  buckets: number[];
  sum: number;
  count: number;
}

/** The daemon metrics the bench reads. */
export interface DaemonMetrics {
  loopDelay?: PromHistogram;
  batchSize?: PromHistogram;
  /** `kine_gap_fill_total` by `result` (filled, failed, skipped). */
  gapFills: Record<string, number>;
}

const LOOP = "kine_event_loop_delay_seconds";
const BATCH = "kine_txn_batch_size";
const GAP_FILLS = "kine_gap_fill_total";

/** Sums the counter `name` out of Prometheus text format by the value of its label `label`. */
export function parseCounter(text: string, name: string, label: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+?)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const key = new RegExp(`${label}="([^"]*)"`).exec(m[2] ?? "")?.[1] ?? "";
    out[key] = (out[key] ?? 0) + Number(m[3]);
  }
  return out;
}

/** Parses the unlabelled histogram `name` out of Prometheus text format. */
export function parseHistogram(text: string, name: string): PromHistogram | undefined {
  const buckets = new Map<number, number>();
  let sum: number | undefined;
  let count: number | undefined;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^(\S+?)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (m[1] === `${name}_bucket`) {
      const le = /le="([^"]*)"/.exec(m[2] ?? "")?.[1];
      if (le !== undefined) buckets.set(le === "+Inf" ? Infinity : Number(le), value);
    } else if (m[1] === `${name}_sum`) sum = value;
    else if (m[1] === `${name}_count`) count = value;
  }
  if (!buckets.size || sum === undefined || count === undefined) return undefined;
  const le = [...buckets.keys()].sort((a, b) => a - b);
  return { le, buckets: le.map((b) => buckets.get(b)!), sum, count };
}

/** Fetches `url` and reads the two histograms; undefined when there is no URL or it fails. */
export async function scrape(url: string | undefined): Promise<DaemonMetrics | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    const text = await res.text();
    return {
      loopDelay: parseHistogram(text, LOOP),
      batchSize: parseHistogram(text, BATCH),
      gapFills: parseCounter(text, GAP_FILLS, "result"),
    };
  } catch {
    return undefined;
  }
}

/** `after - before` bucket by bucket (before undefined: all of `after`). */
export function delta(
  after: PromHistogram | undefined,
  before: PromHistogram | undefined,
): PromHistogram | undefined {
  if (!after) return undefined;
  if (!before) return after;
  if (before.le.length !== after.le.length) return undefined;
  return {
    le: after.le,
    buckets: after.buckets.map((n, i) => n - before.buckets[i]),
    sum: after.sum - before.sum,
    count: after.count - before.count,
  };
}

/** `after - before` for each label value; undefined when either scrape failed. */
export function counterDelta(
  after: Record<string, number> | undefined,
  before: Record<string, number> | undefined,
): Record<string, number> | undefined {
  if (!after || !before) return undefined;
  return Object.fromEntries(Object.entries(after).map(([k, n]) => [k, n - (before[k] ?? 0)]));
}

/** Adds `b` into `a` (same buckets), returning `a`, or a copy of `b` when `a` is undefined. */
export function addInto(a: PromHistogram | undefined, b: PromHistogram): PromHistogram {
  if (!a) return { le: [...b.le], buckets: [...b.buckets], sum: b.sum, count: b.count };
  b.buckets.forEach((n, i) => a.buckets[i] += n);
  a.sum += b.sum;
  a.count += b.count;
  return a;
}

/**
 * Upper bound of the bucket where the cumulative count reaches `q` of the
 * total (Infinity when that is the +Inf bucket); undefined with no observations.
 */
export function bucketQuantile(h: PromHistogram | undefined, q: number): number | undefined {
  if (!h || h.count <= 0) return undefined;
  const target = q * h.count;
  for (let i = 0; i < h.le.length; i++) if (h.buckets[i] >= target) return h.le[i];
  return Infinity;
}
