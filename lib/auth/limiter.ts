/**
 * Brute-force limits for `Authenticate` that slow the attacker, never the
 * victim: failures are counted per (peer, name) pair and per peer, and
 * never per name alone, so no peer can lock a user out for anyone else.
 *
 * - A pair gets {@link FREE_FAILURES} free failures; after that each one
 *   locks the pair for a doubling time (up to a minute), and attempts while
 *   locked are refused without checking the password.
 * - A peer that failed more than {@link PEER_FREE_FAILURES} times (spraying
 *   names) is slowed, not locked: each of its attempts waits
 *   {@link SLOW_PEER_DELAY_MS} first, and only {@link SLOW_PEER_IN_FLIGHT}
 *   may run at once. A right password from that peer still logs in.
 * - Every attempt counts as in flight from before its password check to its
 *   end, and in-flight attempts count as failures for the checks above, so
 *   concurrent attempts cannot all pass before the first failure lands.
 *
 * A success clears its pair. Counts untouched for 15 minutes are forgotten.
 */

const FREE_FAILURES = 5;
const FIRST_LOCKOUT_MS = 1_000;
const MAX_LOCKOUT_MS = 60_000;
/** Failures one peer may make, over all names, before it is slowed. */
export const PEER_FREE_FAILURES = 20;
/** Attempts one peer may have in flight; fewer once it is slowed. */
const PEER_IN_FLIGHT = 16;
const SLOW_PEER_IN_FLIGHT = 2;
/** How long each attempt of a slowed peer waits before its password check. */
export const SLOW_PEER_DELAY_MS = 500;
/** A count not touched for this long is forgotten. */
const FORGET_AFTER_MS = 15 * 60_000;
/** A pair's failures are reported at most once per window. */
export const LOG_WINDOW_MS = 60_000;
/** Counts kept at most; past it the oldest idle ones go. */
const MAX_ENTRIES = 100_000;
/** Characters of a name that tell pairs apart: a longer name only merges its sender's own counts. */
const NAME_KEY_CHARS = 256;

interface Entry {
  failures: number;
  inFlight: number;
  lockedUntil: number;
  touched: number;
  /** When its failures were last reported, and how many since. */
  loggedAt: number;
  unlogged: number;
}

/** One admitted attempt: end it with exactly one of its methods. */
export interface Attempt {
  /** Wait this long before checking the password (a slowed peer). */
  readonly delayMs: number;
  /** Counts a failure; returns the failures to report now (0: already reported this window). */
  failed(): number;
  succeeded(): void;
  /** Ends without counting (the check itself could not run). */
  abandoned(): void;
}

export class LoginLimiter {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Admits an attempt of `name` from `peer` (an address without port), or undefined to refuse it. */
  begin(peer: string, name: string): Attempt | undefined {
    const now = this.now();
    const pair = this.#entry(`${peer}\0${name.slice(0, NAME_KEY_CHARS)}`, now);
    const host = this.#entry(peer, now);
    if (pair.lockedUntil > now) return undefined;
    if (pair.inFlight >= Math.max(1, FREE_FAILURES - pair.failures)) return undefined;
    const slowed = host.failures + host.inFlight > PEER_FREE_FAILURES;
    if (host.inFlight >= (slowed ? SLOW_PEER_IN_FLIGHT : PEER_IN_FLIGHT)) return undefined;
    pair.inFlight++;
    host.inFlight++;
    let open = true;
    const end = () => {
      if (!open) return false;
      open = false;
      pair.inFlight--;
      host.inFlight--;
      pair.touched = host.touched = this.now();
      return true;
    };
    return {
      delayMs: slowed ? SLOW_PEER_DELAY_MS : 0,
      failed: () => (end() ? this.#failed(pair, host) : 0),
      succeeded: () => {
        if (end()) pair.failures = pair.unlogged = pair.lockedUntil = 0;
      },
      abandoned: () => void end(),
    };
  }

  #failed(pair: Entry, host: Entry): number {
    const now = pair.touched;
    host.failures++;
    pair.failures++;
    pair.unlogged++;
    if (pair.failures >= FREE_FAILURES) {
      const lockout = FIRST_LOCKOUT_MS * 2 ** (pair.failures - FREE_FAILURES);
      pair.lockedUntil = now + Math.min(lockout, MAX_LOCKOUT_MS);
    }
    if (pair.loggedAt !== 0 && now - pair.loggedAt < LOG_WINDOW_MS) return 0;
    const report = pair.unlogged;
    pair.loggedAt = now;
    pair.unlogged = 0;
    return report;
  }

  #entry(key: string, now: number): Entry {
    let e = this.#entries.get(key);
    if (e && e.inFlight === 0 && e.lockedUntil < now && e.touched + FORGET_AFTER_MS < now) {
      this.#entries.delete(key);
      e = undefined;
    }
    if (!e) {
      if (this.#entries.size >= MAX_ENTRIES) this.#forget(now);
      e = { failures: 0, inFlight: 0, lockedUntil: 0, touched: now, loggedAt: 0, unlogged: 0 };
      this.#entries.set(key, e);
    }
    return e;
  }

  /** Drops forgotten counts, and the oldest idle ones while still over {@link MAX_ENTRIES}. */
  #forget(now: number): void {
    for (const [k, e] of this.#entries) {
      const idle = e.inFlight === 0 && e.lockedUntil < now;
      if (idle && (e.touched + FORGET_AFTER_MS < now || this.#entries.size >= MAX_ENTRIES)) {
        this.#entries.delete(k);
      }
    }
  }
}
