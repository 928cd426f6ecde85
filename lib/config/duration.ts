/**
 * Go `time.ParseDuration` / `time.Duration.String` compatible helpers.
 *
 * Kine's configuration keeps durations as (possibly fractional) milliseconds; the parser works in
 * exact integer nanoseconds internally so that Go's overflow and truncation rules are reproduced.
 *
 * @module
 */

const NANOSECOND = 1n;
const MICROSECOND = 1000n * NANOSECOND;
const MILLISECOND = 1000n * MICROSECOND;
const SECOND = 1000n * MILLISECOND;
const MINUTE = 60n * SECOND;
const HOUR = 60n * MINUTE;

/** Largest value of Go's `time.Duration` (int64 nanoseconds). */
const MAX_INT64 = (1n << 63n) - 1n;
/** Go accumulates the magnitude in a uint64 capped at 2^63 so that the int64 minimum parses. */
const MAX_MAGNITUDE = 1n << 63n;

const UNITS: ReadonlyMap<string, bigint> = new Map([
  ["ns", NANOSECOND],
  ["us", MICROSECOND],
  ["\u00b5s", MICROSECOND], // U+00B5 MICRO SIGN
  ["\u03bcs", MICROSECOND], // U+03BC GREEK SMALL LETTER MU
  ["ms", MILLISECOND],
  ["s", SECOND],
  ["m", MINUTE],
  ["h", HOUR],
]);

function isDigit(c: string): boolean {
  return c >= "0" && c <= "9";
}

function invalid(orig: string): Error {
  return new Error(`time: invalid duration ${JSON.stringify(orig)}`);
}

/**
 * Parses a Go duration string into integer nanoseconds, with Go's exact semantics: an optional
 * sign followed by one or more `<decimal><unit>` parts (units `ns`, `us`, `µs`, `ms`, `s`, `m`,
 * `h`); the bare string `0` is the only unit-less value accepted. Values outside the int64
 * nanosecond range are rejected.
 *
 * @throws Error with Go's message (`time: invalid duration "x"`, `time: missing unit in duration
 * "x"`, `time: unknown unit "u" in duration "x"`).
 */
export function parseDurationNanos(s: string): bigint {
  const orig = s;
  let neg = false;
  if (s !== "") {
    const c = s[0];
    if (c === "-" || c === "+") {
      neg = c === "-";
      s = s.slice(1);
    }
  }
  if (s === "0") return 0n;
  if (s === "") throw invalid(orig);

  let total = 0n;
  while (s !== "") {
    if (!(s[0] === "." || isDigit(s[0]))) throw invalid(orig);

    // Integer part.
    let i = 0;
    while (i < s.length && isDigit(s[i])) i++;
    const pre = i > 0;
    const intDigits = s.slice(0, i);
    s = s.slice(i);
    let v = pre ? BigInt(intDigits) : 0n;
    if (v > MAX_MAGNITUDE) throw invalid(orig);

    // Fractional part.
    let post = false;
    let frac = 0; // float64(f) in Go
    let scale = 1; // float64 scale in Go
    if (s[0] === ".") {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      let f = 0n;
      while (j < s.length && isDigit(s[j])) {
        if (!overflow) {
          const next = f * 10n + BigInt(s.charCodeAt(j) - 48);
          if (next > MAX_MAGNITUDE) {
            overflow = true; // Go stops accumulating but keeps consuming digits.
          } else {
            f = next;
            scale *= 10;
          }
        }
        j++;
      }
      post = j > 0;
      frac = Number(f);
      s = s.slice(j);
    }
    if (!pre && !post) throw invalid(orig); // no digits at all, e.g. "." or ".s"

    // Unit.
    let k = 0;
    while (k < s.length && s[k] !== "." && !isDigit(s[k])) k++;
    if (k === 0) throw new Error(`time: missing unit in duration ${JSON.stringify(orig)}`);
    const u = s.slice(0, k);
    s = s.slice(k);
    const unit = UNITS.get(u);
    if (unit === undefined) {
      throw new Error(
        `time: unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(orig)}`,
      );
    }

    v *= unit;
    if (v > MAX_MAGNITUDE) throw invalid(orig);
    if (frac > 0) {
      v += BigInt(Math.trunc(frac * (Number(unit) / scale)));
      if (v > MAX_MAGNITUDE) throw invalid(orig);
    }
    total += v;
    if (total > MAX_MAGNITUDE) throw invalid(orig);
  }
  if (neg) return -total;
  if (total > MAX_INT64) throw invalid(orig);
  return total;
}

/**
 * Parses a Go duration string (`300ms`, `-1.5h`, `2h45m`, `1us`, `1µs`, `10ns`, `0`) and returns
 * milliseconds (fractional for sub-millisecond values, e.g. `10ns` → `0.00001`).
 *
 * @throws Error describing the problem for anything Go's `time.ParseDuration` would reject.
 */
export function parseDuration(s: string): number {
  return Number(parseDurationNanos(s)) / 1e6;
}

function fmtFraction(v: bigint, digits: number): string {
  // Formats v / 10^digits without trailing zeros, e.g. (1500n, 3) → "1.5".
  const div = 10n ** BigInt(digits);
  const whole = v / div;
  let frac = (v % div).toString().padStart(digits, "0").replace(/0+$/, "");
  if (frac !== "") frac = "." + frac;
  return whole.toString() + frac;
}

/**
 * Formats milliseconds the way Go's `time.Duration.String` does (`1.5s`, `2m0s`, `1h0m0s`,
 * `300ms`, `10ns`, `0s`). Sub-nanosecond precision is rounded away.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  let ns = BigInt(Math.round(ms * 1e6));
  if (ns === 0n) return "0s";
  const sign = ns < 0n ? "-" : "";
  if (ns < 0n) ns = -ns;
  if (ns < MICROSECOND) return `${sign}${ns}ns`;
  if (ns < MILLISECOND) return `${sign}${fmtFraction(ns, 3)}\u00b5s`;
  if (ns < SECOND) return `${sign}${fmtFraction(ns, 6)}ms`;
  const h = ns / HOUR;
  const m = (ns % HOUR) / MINUTE;
  const sec = fmtFraction(ns % MINUTE, 9) + "s";
  if (h > 0n) return `${sign}${h}h${m}m${sec}`;
  if (m > 0n) return `${sign}${m}m${sec}`;
  return sign + sec;
}
