/**
 * The automatic compactor (`--compact-interval`): every interval it compacts
 * to the revision it saw at the previous tick, so history younger than one
 * interval always survives, and never within the newest
 * `--compact-min-retain` revisions (a policy of this compactor only: a
 * client's `Compact(r)` compacts exactly to r). Failures are logged and
 * retried next tick.
 * Of several processes on one store only the holder of the `compactor` role
 * compacts; it renews the role every second, so it stays the one.
 *
 * @module
 */
import { BackendError } from "../backend/errors.ts";
import type { MvccStore, RoleStore } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import type { KineMetrics } from "../metrics/mod.ts";
import { Role } from "../role/mod.ts";

export interface CompactorOptions {
  /** ms; 0 disables the compactor. */
  interval: number;
  /** ±percent, applied once to the interval. */
  jitter: number;
  /** `--compact-min-retain`: the newest revisions never compacted. */
  minRetain: number;
  logger: Logger;
  metrics?: KineMetrics;
}

/** How often the role is renewed between compactions (ms). */
const ROLE_RENEW_MS = 1000;

/** Starts the compactor; returns a function that stops it. */
export function startCompactor(
  backend: MvccStore & RoleStore,
  o: CompactorOptions,
): () => Promise<void> {
  if (o.interval <= 0) return () => Promise.resolve();
  const spread = o.jitter > 0 ? (Math.random() * 2 - 1) * (o.jitter / 100) : 0;
  const period = Math.max(1, Math.round(o.interval * (1 + spread)));
  const role = new Role(backend, "compactor", o.logger, o.metrics);
  const renew = setInterval(() => role.held(), ROLE_RENEW_MS);
  let target = backend.currentRevision();
  /** The current revision a compaction of ours answered (NATS records it as a write). */
  let ownRevision = 0;
  let running: Promise<void> | undefined;
  const tick = async () => {
    const seen = backend.currentRevision();
    // Nothing but our own compaction since: keep the target, so an idle store stays idle.
    const next = seen === ownRevision ? target : seen;
    try {
      const upTo = Math.min(target, seen - o.minRetain);
      if (upTo > 0 && await role.held()) ownRevision = await backend.compact(upTo);
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
