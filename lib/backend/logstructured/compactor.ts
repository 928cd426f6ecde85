import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { compacted, futureRevision } from "../errors.ts";
import type { LogStore } from "./log.ts";
import type { Snapshots } from "./snapshot.ts";
import type { WatchHub } from "./watch_hub.ts";
import type { WritePipeline } from "./write_pipeline.ts";

export interface CompactorOptions {
  compactBatchSize: number;
  compactTimeout: number;
  logger: Logger;
  metrics?: KineMetrics;
}

/** How long one batch may hold the write queue, ms: a client write waits at most about this. */
export const COMPACT_BATCH_MS = 50;
/** The span a batch is sized for, ms: below the bound, so a batch that takes longer stays in it. */
const AIM_MS = COMPACT_BATCH_MS / 2;
/** The fewest revisions a batch covers. */
const MIN_SPAN = 16;
/** The first batch's span, before any was timed: small, it doubles while batches are quick. */
const INITIAL_SPAN = 128;
/**
 * Batch work between two turns of the event loop, ms: a client write waits
 * for at most this plus the batch under way.
 */
const TURN_MS = 10;

/**
 * Lets timers and I/O run, so requests that arrived meanwhile are read and
 * queued. A timer is the turn that lets them all in (an immediate or a message
 * runs ahead of them), but a chained one fires only after ~4 ms, so batches
 * give the loop a turn once every {@link TURN_MS} of work, not after each one.
 */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/**
 * Deletes history up to a revision in batches of at most `compactBatchSize`
 * revisions, each its own write transaction, exactly to the revision asked
 * (kine's periodic compactor applies `--compact-min-retain` before asking),
 * never past rows the poll loop has not published.
 * Creates no revision. Another process compacting the same store meanwhile is
 * detected per batch and followed: each batch moves the recorded compact
 * revision with a conditional update, so no two processes run one batch, and
 * a batch is one transaction, so a process dying mid-run leaves no half batch.
 * A batch holds the write queue, so its span (revisions) is sized from the
 * last batches' time to stay within {@link COMPACT_BATCH_MS}: client writes
 * queued meanwhile go between two batches.
 */
export class Compactor {
  /** Revisions per batch, learnt from the time batches took. */
  #span = INITIAL_SPAN;
  /** Superseding revisions (rows to delete) per batch, learnt likewise (`compactBound`). */
  #rows = INITIAL_SPAN;

  constructor(
    private readonly store: LogStore,
    private readonly writes: WritePipeline,
    private readonly hub: WatchHub,
    private readonly options: CompactorOptions,
    private readonly snapshots: Snapshots,
  ) {}

  /** Compacts to `revision`; returns the current revision. */
  async compact(revision: number): Promise<number> {
    const { current, compact } = await this.store.reader.revisions();
    if (revision > current) throw futureRevision();
    if (revision <= compact) throw compacted();
    // Rows above what the poll loop published may not be compacted; catch it up first.
    await this.hub.waitForSyncTo(revision);
    const { compactBatchSize, logger, metrics } = this.options;
    const started = performance.now();
    let from = compact;
    let batches = 0;
    let turn = started;
    while (from < revision) {
      // Every step of a synchronous engine resolves at once: without a turn of the event loop
      // the whole run would be one task, and no client request could even be read until it ends.
      if (performance.now() - turn >= TURN_MS) {
        await yieldToEventLoop();
        turn = performance.now();
      }
      await this.snapshots.idle();
      const span = Math.min(this.#span, compactBatchSize);
      const step = Math.min(from + span, revision);
      /** When the batch got the write queue: the time writes queued before it wait is not its own. */
      let batchStarted = 0;
      let outcome: { raced: boolean; reached: number; cut?: boolean };
      try {
        outcome = await this.writes.write(async (tx) => {
          batchStarted = performance.now();
          const now = await tx.revisions();
          if (now.compact !== from) return { raced: true, reached: now.compact };
          let target = Math.min(step, this.hub.polled);
          if (target <= from) return { raced: false, reached: from };
          let cut = false;
          if (tx.compactBound) ({ target, cut } = await tx.compactBound(from, target, this.#rows));
          if (!await tx.compactTo(from, target)) {
            return { raced: true, reached: (await tx.revisions()).compact };
          }
          return { raced: false, reached: target, cut };
        });
      } catch (err) {
        metrics?.compactTotal.labels("error").inc();
        throw err;
      }
      metrics?.compactTotal.labels("success").inc();
      const took = performance.now() - batchStarted;
      if (!outcome.raced) {
        if (outcome.reached === from) break;
        batches++;
        metrics?.compactBatchSeconds.observe(took / 1000);
        // A batch its deletes cut short says how many deletes fit, not how many revisions.
        if (outcome.cut) this.#rows = resized(this.#rows, took, compactBatchSize);
        else this.#span = resized(outcome.reached - from, took, compactBatchSize);
      }
      if (took > this.options.compactTimeout) {
        // A synchronous engine cannot abandon a batch half-way; say so, and let the next run go on.
        logger.warn("compaction batch exceeded --compact-timeout; stopping this run", {
          duration: `${Math.round(took)}ms`,
          reached: outcome.reached,
        });
        from = outcome.reached;
        break;
      }
      const limited = !outcome.raced && !outcome.cut && outcome.reached < step;
      from = outcome.reached;
      if (limited) break;
    }
    if (batches > 0) {
      try {
        await this.store.afterCompact();
      } catch (err) {
        logger.warn("post-compaction step failed", { error: String(err) });
      }
      logger.info(`COMPACT compacted from ${compact} to ${from} in ${batches} transactions`, {
        duration: `${Math.round(performance.now() - started)}ms`,
      });
    }
    return (await this.store.reader.revisions()).current;
  }
}

/**
 * The next batch's size from the last one's (`size` revisions or deletes in
 * `took` ms): scaled toward {@link AIM_MS}, at most doubling at a time (a
 * cheap stretch of history says little about the next), within
 * [{@link MIN_SPAN}, `max`].
 */
function resized(size: number, took: number, max: number): number {
  const scaled = took > 0 ? Math.floor(size * AIM_MS / took) : size * 2;
  return Math.max(MIN_SPAN, Math.min(scaled, size * 2, max));
}
