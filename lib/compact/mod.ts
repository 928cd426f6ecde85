/**
 * The automatic compactor (`--compact-interval`): every interval it compacts
 * to the revision it saw at the previous tick, so history younger than one
 * interval always survives; the backend also keeps the newest
 * `--compact-min-retain` revisions. Failures are logged and retried next tick.
 * Of several processes on one store only the holder of the `compactor` role
 * compacts; it renews the role every second, so it stays the one.
 *
 * @module
 */
import { BackendError } from "../backend/errors.ts";
import type { Backend } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import type { KineMetrics } from "../metrics/mod.ts";
import { Role } from "../role/mod.ts";

export interface CompactorOptions {
  /** ms; 0 disables the compactor. */
  interval: number;
  /** ±percent, applied once to the interval. */
  jitter: number;
  logger: Logger;
  metrics?: KineMetrics;
}

/** How often the role is renewed between compactions (ms). */
const ROLE_RENEW_MS = 1000;

/** Starts the compactor; returns a function that stops it. */
export function startCompactor(backend: Backend, o: CompactorOptions): () => Promise<void> {
  if (o.interval <= 0) return () => Promise.resolve();
  const spread = o.jitter > 0 ? (Math.random() * 2 - 1) * (o.jitter / 100) : 0;
  const period = Math.max(1, Math.round(o.interval * (1 + spread)));
  const role = new Role(backend, "compactor", o.logger, o.metrics);
  const renew = setInterval(() => role.held(), ROLE_RENEW_MS);
  let target = backend.currentRevision();
  let running: Promise<void> | undefined;
  const tick = async () => {
    const next = backend.currentRevision();
    try {
      if (target > 0 && await role.held()) await backend.compact(target);
    } catch (err) {
      if (!(err instanceof BackendError && err.kind === "compacted")) {
        o.logger.warn("automatic compaction failed; retrying next interval", {
          error: String(err),
        });
      }
    }
    target = next;
  };
  const timer = setInterval(() => {
    running ??= tick().finally(() => running = undefined);
  }, period);
  return async () => {
    clearInterval(timer);
    clearInterval(renew);
    await running;
    await role.release();
  };
}
