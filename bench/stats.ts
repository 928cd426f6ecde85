/** Latency histograms that can be sent between processes and merged. */

/** Buckets per power of two: about 2% resolution. */
const PER_OCTAVE = 32;

/** Histogram data as sent between processes: bucket index → count, plus exact extremes. */
export interface HistogramData {
  buckets: Record<number, number>;
  count: number;
  max: number;
  min: number;
}

/** A log-bucketed histogram of durations in milliseconds (resolution about 2%). */
export class Histogram {
  buckets = new Map<number, number>();
  count = 0;
  max = 0;
  min = Infinity;

  /** Records one duration, ms. */
  add(ms: number): void {
    const us = Math.max(1, ms * 1000);
    const i = Math.floor(Math.log2(us) * PER_OCTAVE);
    this.buckets.set(i, (this.buckets.get(i) ?? 0) + 1);
    this.count++;
    if (ms > this.max) this.max = ms;
    if (ms < this.min) this.min = ms;
  }

  /** Adds another histogram's counts to this one. */
  merge(other: Histogram | HistogramData): this {
    const h = other instanceof Histogram ? other : Histogram.from(other);
    for (const [i, n] of h.buckets) this.buckets.set(i, (this.buckets.get(i) ?? 0) + n);
    this.count += h.count;
    this.max = Math.max(this.max, h.max);
    this.min = Math.min(this.min, h.min);
    return this;
  }

  /** The `q` quantile (0..1), ms; NaN when empty. */
  quantile(q: number): number {
    if (this.count === 0) return NaN;
    if (q >= 1) return this.max;
    const rank = Math.ceil(q * this.count);
    let seen = 0;
    for (const i of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(i)!;
      if (seen >= rank) {
        // Middle of the bucket, clamped to what was really seen.
        const ms = 2 ** ((i + 0.5) / PER_OCTAVE) / 1000;
        return Math.min(this.max, Math.max(this.min, ms));
      }
    }
    return this.max;
  }

  toJSON(): HistogramData {
    return {
      buckets: Object.fromEntries(this.buckets),
      count: this.count,
      max: this.max,
      min: this.count ? this.min : 0,
    };
  }

  static from(d: HistogramData): Histogram {
    const h = new Histogram();
    for (const [i, n] of Object.entries(d.buckets)) h.buckets.set(Number(i), n);
    h.count = d.count;
    h.max = d.max;
    h.min = d.count ? d.min : Infinity;
    return h;
  }
}

/** Named histograms, one per operation type. */
export class Histograms {
  readonly byOp = new Map<string, Histogram>();

  /** The histogram of `op`, created on first use. */
  get(op: string): Histogram {
    let h = this.byOp.get(op);
    if (!h) this.byOp.set(op, h = new Histogram());
    return h;
  }

  /** Times `fn` into the histogram of `op`. */
  async time<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const result = await fn();
    this.get(op).add(performance.now() - t0);
    return result;
  }

  merge(other: Histograms | Record<string, HistogramData>): this {
    const entries = other instanceof Histograms
      ? [...other.byOp]
      : Object.entries(other).map(([k, v]) => [k, Histogram.from(v)] as const);
    for (const [op, h] of entries) this.get(op).merge(h);
    return this;
  }

  toJSON(): Record<string, HistogramData> {
    return Object.fromEntries([...this.byOp].map(([k, h]) => [k, h.toJSON()]));
  }
}
