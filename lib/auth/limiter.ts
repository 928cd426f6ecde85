/**
 * Brute-force protection for `Authenticate`: failures are counted per user
 * name and per peer address. The first few are free; after that each failure
 * locks the name (or the peer) out for a doubling time, up to a ceiling, and
 * calls made while locked out are refused without checking the password.
 * A success clears the name's and the peer's count.
 */

/** Failures allowed before lock-outs start. */
const FREE_FAILURES = 5;
const FIRST_LOCKOUT_MS = 1_000;
const MAX_LOCKOUT_MS = 60_000;
/** A count not touched for this long is forgotten. */
const FORGET_AFTER_MS = 15 * 60_000;

interface Entry {
  failures: number;
  lockedUntil: number;
  touched: number;
}

export class FailureLimiter {
  readonly #entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  /** True while any of `keys` is locked out. */
  locked(keys: string[]): boolean {
    const now = this.now();
    return keys.some((k) => (this.#entries.get(k)?.lockedUntil ?? 0) > now);
  }

  failed(keys: string[]): void {
    const now = this.now();
    if (this.#entries.size > 10_000) this.#forgetOld(now);
    for (const k of keys) {
      const e = this.#entries.get(k) ?? { failures: 0, lockedUntil: 0, touched: now };
      e.failures++;
      e.touched = now;
      if (e.failures > FREE_FAILURES) {
        const lockout = FIRST_LOCKOUT_MS * 2 ** (e.failures - FREE_FAILURES - 1);
        e.lockedUntil = now + Math.min(lockout, MAX_LOCKOUT_MS);
      }
      this.#entries.set(k, e);
    }
  }

  succeeded(keys: string[]): void {
    for (const k of keys) this.#entries.delete(k);
  }

  #forgetOld(now: number): void {
    for (const [k, e] of this.#entries) {
      if (e.touched + FORGET_AFTER_MS < now && e.lockedUntil < now) this.#entries.delete(k);
    }
  }
}
