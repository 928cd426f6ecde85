/**
 * Roles that one kine process at a time performs among those sharing a
 * store: the lease reaper and the automatic compactor. A role is a row of
 * `kine_role` naming its holder and a deadline; the holder renews it while it
 * runs, and when it stops (or dies) another process takes it once the
 * deadline passes. The work itself never relies on the role alone: lease
 * expiry and compaction use conditional statements, so two processes that
 * both believe they hold a role (clocks apart) still do each step once.
 *
 * @module
 */
import type { RoleStore } from "../backend/types.ts";
import { StoreBusy } from "../backend/errors.ts";
import type { Logger } from "../log/mod.ts";
import type { KineMetrics } from "../metrics/mod.ts";

/** How long a claim lasts without renewal (ms). */
export const ROLE_TTL_MS = 5000;
/** How often the holder renews, and a waiting process tries (ms). */
const RENEW_MS = 1000;

/** This process's name as a role holder: host, pid and a random part (several per process). */
function holderName(): string {
  let host = "";
  try {
    host = Deno.hostname();
  } catch { /* not allowed: the random part is enough */ }
  return `${host}:${Deno.pid}:${crypto.randomUUID().slice(0, 8)}`;
}

/** One role, claimed and renewed on demand by {@link Role.held}. */
export class Role {
  readonly holder = holderName();
  #heldUntil = 0;
  #lastTry = -Infinity;
  #trying?: Promise<boolean>;

  constructor(
    private readonly backend: RoleStore,
    readonly name: string,
    private readonly logger: Logger,
    private readonly metrics?: KineMetrics,
  ) {}

  /**
   * True while this process holds the role; claims or renews it at most once
   * per second. A claim that fails (database unreachable or locked) changes
   * nothing: a role held stays held until its last claim's deadline.
   */
  held(): Promise<boolean> {
    const now = performance.now();
    if (now - this.#lastTry < RENEW_MS) return Promise.resolve(now < this.#heldUntil);
    this.#trying ??= this.#claim(now).finally(() => this.#trying = undefined);
    return this.#trying;
  }

  async #claim(now: number): Promise<boolean> {
    this.#lastTry = now;
    let ok: boolean;
    try {
      ok = await this.backend.claimRole(this.name, this.holder, ROLE_TTL_MS);
    } catch (err) {
      // Not asked (the store is locked or away): the last claim's deadline still stands.
      // Another process's write lock is ordinary sharing, not something to warn about.
      const log = err instanceof StoreBusy ? this.logger.debug : this.logger.warn;
      log.call(this.logger, "role claim failed", { role: this.name, error: String(err) });
      return performance.now() < this.#heldUntil;
    }
    const was = now < this.#heldUntil;
    // Stop a second early: a peer may take over the moment the stored deadline passes.
    this.#heldUntil = ok ? now + ROLE_TTL_MS - RENEW_MS : 0;
    if (ok !== was) this.logger.info(ok ? "took role" : "lost role", { role: this.name });
    this.metrics?.roleHeld.labels(this.name).set(ok ? 1 : 0);
    return ok;
  }

  /** Gives the role up at once (a clean shutdown), so a peer need not wait out the deadline. */
  async release(): Promise<void> {
    await this.#trying;
    if (this.#heldUntil === 0) return;
    this.#heldUntil = 0;
    this.metrics?.roleHeld.labels(this.name).set(0);
    await this.backend.claimRole(this.name, this.holder, 0).catch(() => {});
  }
}
