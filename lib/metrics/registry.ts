/**
 * A dependency-free Prometheus registry rendering the text exposition format 0.0.4.
 *
 * Labelled metrics cache one child per label set in nested maps, so `labels(...)` on a known label
 * set and the following `inc()`/`observe()` allocate no strings; hot paths may also keep the child.
 *
 * @module
 */

/** `Content-Type` of {@link Registry.render}'s output. */
export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** A tuple of label values matching a tuple of label names. */
export type LabelValues<L extends readonly string[]> = { [K in keyof L]: string };

/** Anything the {@link Registry} can render: one metric family. */
export interface Collector {
  /** Metric family name; unique within a registry. */
  readonly name: string;
  /** Appends the family's exposition lines (HELP, TYPE, samples) to `out`; nothing if empty. */
  collect(out: string[]): void;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escapes a label value for the text format (`\\`, `"`, newline). */
export function escapeLabelValue(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\\" ? "\\\\" : c === '"' ? '\\"' : "\\n"));
}

/** Escapes HELP text for the text format (`\\`, newline). */
export function escapeHelp(v: string): string {
  return v.replace(/[\\\n]/g, (c) => (c === "\\" ? "\\\\" : "\\n"));
}

/** Formats a sample value: integers plainly, `+Inf`, `-Inf`, `NaN`, otherwise shortest float. */
export function formatValue(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v); // NaN → "NaN"; JS shortest round-trip otherwise
}

/** Renders `name="v",other="w"` (no braces); empty string for no labels. */
function labelPairs(names: readonly string[], values: readonly string[]): string {
  let s = "";
  for (let i = 0; i < names.length; i++) {
    if (i > 0) s += ",";
    s += `${names[i]}="${escapeLabelValue(values[i])}"`;
  }
  return s;
}

function braces(pairs: string): string {
  return pairs === "" ? "" : `{${pairs}}`;
}

/** Common options of every metric. */
export interface MetricOptions<L extends readonly string[]> {
  /** Metric family name, e.g. `kine_sql_total`. */
  name: string;
  /** HELP text. */
  help: string;
  /** Label names, e.g. `["name", "error_code"] as const`; default none. */
  labelNames?: L;
}

/** Shared label-set bookkeeping: nested-map child cache plus render order. */
abstract class Family<L extends readonly string[], C> implements Collector {
  readonly name: string;
  readonly help: string;
  readonly labelNames: L;
  #root = new Map<string, unknown>();
  #entries: { pairs: string; child: C }[] = [];
  #single: C | undefined;

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name ${opts.name}`);
    const names = (opts.labelNames ?? []) as unknown as L;
    const seen = new Set<string>();
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith("__") || reserved.includes(l) || seen.has(l)) {
        throw new Error(`invalid label name ${l} for metric ${opts.name}`);
      }
      seen.add(l);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = names;
  }

  /** Builds a new child whose pre-rendered label pairs are `pairs`. */
  protected abstract newChild(pairs: string): C;
  /** Exposition type keyword. */
  protected abstract readonly type: string;
  /** Appends the sample lines of one child. */
  protected abstract sample(out: string[], pairs: string, child: C): void;

  /** Child for the empty label set (only valid without label names); created eagerly on use. */
  protected unlabeled(): C {
    if (this.#single !== undefined) return this.#single;
    if (this.labelNames.length !== 0) {
      throw new Error(`metric ${this.name} requires labels ${this.labelNames.join(",")}`);
    }
    const c = this.newChild("");
    this.#single = c;
    this.#entries.push({ pairs: "", child: c });
    return c;
  }

  /** Returns the cached child for a label set, creating it on first use. */
  protected child(values: readonly string[]): C {
    const n = this.labelNames.length;
    if (values.length !== n) {
      throw new Error(
        `metric ${this.name} expects ${n} label values (${
          this.labelNames.join(",")
        }), got ${values.length}`,
      );
    }
    if (n === 0) return this.unlabeled();
    let node = this.#root;
    for (let i = 0; i < n - 1; i++) {
      let next = node.get(values[i]) as Map<string, unknown> | undefined;
      if (next === undefined) {
        next = new Map();
        node.set(values[i], next);
      }
      node = next;
    }
    const last = values[n - 1];
    let c = node.get(last) as C | undefined;
    if (c === undefined) {
      for (const v of values) {
        if (typeof v !== "string") throw new Error(`label values of ${this.name} must be strings`);
      }
      const pairs = labelPairs(this.labelNames, values);
      c = this.newChild(pairs);
      node.set(last, c);
      this.#entries.push({ pairs, child: c });
    }
    return c;
  }

  /** Returns the child for a label set if it exists, without creating it. */
  protected peek(values: readonly string[]): C | undefined {
    const n = this.labelNames.length;
    if (values.length !== n) return undefined;
    if (n === 0) return this.#single;
    let node: Map<string, unknown> | undefined = this.#root;
    for (let i = 0; i < n - 1 && node !== undefined; i++) {
      node = node.get(values[i]) as Map<string, unknown> | undefined;
    }
    return node?.get(values[n - 1]) as C | undefined;
  }

  /** Drops every child (values and label sets). */
  reset(): void {
    this.#root = new Map();
    this.#entries = [];
    this.#single = undefined;
  }

  /** Hook run before rendering (e.g. collect callbacks); returning false skips the family. */
  protected beforeCollect(): boolean {
    return true;
  }

  /** See {@link Collector.collect}. */
  collect(out: string[]): void {
    if (!this.beforeCollect()) return;
    if (this.labelNames.length === 0) this.unlabeled();
    if (this.#entries.length === 0) return;
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.type}`);
    const sorted = this.#entries.slice().sort((a, b) =>
      a.pairs < b.pairs ? -1 : a.pairs > b.pairs ? 1 : 0
    );
    for (const e of sorted) this.sample(out, e.pairs, e.child);
  }
}

/** One label set of a {@link Counter}. */
export class CounterChild {
  /** Current value. */
  value = 0;
  /** Adds `n` (default 1); `n` must be non-negative. */
  inc(n = 1): void {
    if (!(n >= 0)) throw new Error(`counter increment must be non-negative, got ${n}`);
    this.value += n;
  }
}

/** A monotonically increasing counter, optionally labelled. */
export class Counter<L extends readonly string[] = readonly []> extends Family<L, CounterChild> {
  protected readonly type = "counter";

  /** Child for one label set (cached; keep it on hot paths). */
  labels(...values: LabelValues<L>): CounterChild {
    return this.child(values as readonly string[]);
  }
  /** Increments the unlabelled counter. */
  inc(n = 1): void {
    this.unlabeled().inc(n);
  }
  /** Value of the unlabelled counter, or of the given label set (0 if never used; no side effect). */
  get(...values: LabelValues<L>): number {
    return this.peek(values as readonly string[])?.value ?? 0;
  }
  protected newChild(): CounterChild {
    return new CounterChild();
  }
  protected sample(out: string[], pairs: string, c: CounterChild): void {
    out.push(`${this.name}${braces(pairs)} ${formatValue(c.value)}`);
  }
}

/** One label set of a {@link Gauge}. */
export class GaugeChild {
  /** Current value. */
  value = 0;
  /** Sets the value. */
  set(v: number): void {
    this.value = v;
  }
  /** Adds `n` (default 1). */
  inc(n = 1): void {
    this.value += n;
  }
  /** Subtracts `n` (default 1). */
  dec(n = 1): void {
    this.value -= n;
  }
}

/** Options of {@link Gauge}. */
export interface GaugeOptions<L extends readonly string[]> extends MetricOptions<L> {
  /**
   * Called at every render. A returned number becomes the unlabelled value; labelled gauges can
   * instead call `gauge.labels(...).set(...)` inside. If it throws, the family is omitted.
   */
  collect?: (gauge: Gauge<L>) => number | void;
}

/** A value that can go up and down, optionally labelled and/or computed at scrape time. */
export class Gauge<L extends readonly string[] = readonly []> extends Family<L, GaugeChild> {
  protected readonly type = "gauge";
  readonly #collect: ((gauge: Gauge<L>) => number | void) | undefined;

  constructor(opts: GaugeOptions<L>) {
    super(opts);
    this.#collect = opts.collect;
  }
  /** Child for one label set (cached). */
  labels(...values: LabelValues<L>): GaugeChild {
    return this.child(values as readonly string[]);
  }
  /** Sets the unlabelled value. */
  set(v: number): void {
    this.unlabeled().set(v);
  }
  /** Increments the unlabelled value. */
  inc(n = 1): void {
    this.unlabeled().inc(n);
  }
  /** Decrements the unlabelled value. */
  dec(n = 1): void {
    this.unlabeled().dec(n);
  }
  /** Value of the unlabelled gauge or of the given label set (0 if never set; no side effect). */
  get(...values: LabelValues<L>): number {
    return this.peek(values as readonly string[])?.value ?? 0;
  }
  protected override beforeCollect(): boolean {
    if (this.#collect === undefined) return true;
    try {
      const v = this.#collect(this);
      if (typeof v === "number") this.set(v);
      return true;
    } catch {
      return false;
    }
  }
  protected newChild(): GaugeChild {
    return new GaugeChild();
  }
  protected sample(out: string[], pairs: string, c: GaugeChild): void {
    out.push(`${this.name}${braces(pairs)} ${formatValue(c.value)}`);
  }
}

/** One label set of a {@link Histogram}. */
export class HistogramChild {
  /** Per-bucket (non-cumulative) counts; the last slot is the `+Inf` overflow. */
  readonly counts: Float64Array;
  /** Sum of observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;
  readonly #bounds: Float64Array;
  /** Pre-rendered `{…,le="x"}` label blocks, one per bucket incl. `+Inf`. */
  readonly bucketLabels: readonly string[];
  /** Pre-rendered `{…}` label block for `_sum`/`_count`. */
  readonly plainLabels: string;

  constructor(bounds: Float64Array, leStrings: readonly string[], pairs: string) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
    const prefix = pairs === "" ? "" : pairs + ",";
    this.bucketLabels = leStrings.map((le) => `{${prefix}le="${le}"}`);
    this.plainLabels = braces(pairs);
  }
  /** Records one observation (seconds, for `_seconds` histograms). */
  observe(v: number): void {
    const b = this.#bounds;
    let i = 0;
    while (i < b.length && !(v <= b[i])) i++;
    this.counts[i]++;
    this.sum += v;
    this.count++;
  }
}

/** Options of {@link Histogram}. */
export interface HistogramOptions<L extends readonly string[]> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing; `+Inf` is implicit. Default Prometheus' DefBuckets. */
  buckets?: readonly number[];
}

/** Prometheus client default buckets. */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Returns `count` buckets starting at `start`, each `factor` times the previous. */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  if (!(start > 0) || !(factor > 1) || !(count >= 1)) {
    throw new Error("exponentialBuckets needs start > 0, factor > 1, count >= 1");
  }
  const out: number[] = [];
  for (let i = 0, v = start; i < count; i++, v *= factor) out.push(v);
  return out;
}

/** A cumulative histogram with fixed buckets, optionally labelled. */
export class Histogram<L extends readonly string[] = readonly []>
  extends Family<L, HistogramChild> {
  protected readonly type = "histogram";
  /** Bucket upper bounds (without `+Inf`). */
  readonly buckets: readonly number[];
  readonly #bounds: Float64Array;
  readonly #le: readonly string[];

  constructor(opts: HistogramOptions<L>) {
    super(opts, ["le"]);
    const b = (opts.buckets ?? DEFAULT_BUCKETS).filter((x) => x !== Infinity);
    for (let i = 0; i < b.length; i++) {
      if (Number.isNaN(b[i]) || (i > 0 && !(b[i] > b[i - 1]))) {
        throw new Error(`histogram ${opts.name}: buckets must be strictly increasing numbers`);
      }
    }
    this.buckets = b;
    this.#bounds = Float64Array.from(b);
    this.#le = [...b.map(formatValue), "+Inf"];
  }
  /** Child for one label set (cached; keep it on hot paths). */
  labels(...values: LabelValues<L>): HistogramChild {
    return this.child(values as readonly string[]);
  }
  /** Observes into the unlabelled histogram. */
  observe(v: number): void {
    this.unlabeled().observe(v);
  }
  protected newChild(pairs: string): HistogramChild {
    return new HistogramChild(this.#bounds, this.#le, pairs);
  }
  protected sample(out: string[], _pairs: string, c: HistogramChild): void {
    let cum = 0;
    for (let i = 0; i < c.counts.length; i++) {
      cum += c.counts[i];
      out.push(`${this.name}_bucket${c.bucketLabels[i]} ${formatValue(cum)}`);
    }
    out.push(`${this.name}_sum${c.plainLabels} ${formatValue(c.sum)}`);
    out.push(`${this.name}_count${c.plainLabels} ${formatValue(c.count)}`);
  }
}

/** A set of metric families rendered together (kine uses a private one, not a global). */
export class Registry {
  readonly #collectors = new Map<string, Collector>();

  /** Adds a collector; throws if the name is taken. Returns it for chaining. */
  register<T extends Collector>(c: T): T {
    if (this.#collectors.has(c.name)) throw new Error(`metric ${c.name} already registered`);
    this.#collectors.set(c.name, c);
    return c;
  }
  /** Removes a collector by name; returns whether it existed. */
  unregister(name: string): boolean {
    return this.#collectors.delete(name);
  }
  /** Creates and registers a {@link Counter}. */
  counter<const L extends readonly string[] = readonly []>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>(opts));
  }
  /** Creates and registers a {@link Gauge}. */
  gauge<const L extends readonly string[] = readonly []>(opts: GaugeOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }
  /** Creates and registers a {@link Histogram}. */
  histogram<const L extends readonly string[] = readonly []>(
    opts: HistogramOptions<L>,
  ): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }
  /** Renders every family, sorted by name, in text exposition format 0.0.4. */
  render(): string {
    const out: string[] = [];
    const names = [...this.#collectors.keys()].sort();
    for (const n of names) this.#collectors.get(n)!.collect(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }
}
