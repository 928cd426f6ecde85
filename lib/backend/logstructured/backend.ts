import { setImmediate } from "node:timers";
import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { BackendError, compacted, futureRevision } from "../errors.ts";
import { COMPACT_KEY, presentKv, redirectKey } from "./compact_key.ts";
import { isInternal, presentEvents, rowToEvent } from "./events.ts";
import { CountCache } from "./count_cache.ts";
import { Fanout } from "./fanout.ts";
import { type LogStore, type LogWriteTx, rowToKv } from "./log.ts";
import { rangeLog } from "./range.ts";
import { checkTxn, TxnRunner } from "./txn.ts";
import {
  type Backend,
  type Event,
  type EventSink,
  FROM_KEY,
  type LeasedKeys,
  type LeaseRecord,
  type RangeRequest,
  type RangeResult,
  type Status,
  type Txn,
  type TxnResult,
  type WatchResult,
} from "../types.ts";

const POLL_INTERVAL_MS = 1000;
/** How long a missing id may stay missing before the poll loop skips it. */
const GAP_GIVE_UP_MS = 1000;
const HEALTH_KEY = "/registry/health";
const HEALTH_VALUE = new TextEncoder().encode('{"health":"true"}');

export interface LogBackendOptions {
  /** Rows fetched per poll query. */
  pollBatchSize: number;
  compactBatchSize: number;
  compactMinRetain: number;
  compactTimeout: number;
  logger: Logger;
  /** Where the group-commit batch sizes are recorded. */
  metrics?: KineMetrics;
}

interface SyncWaiter {
  revision: number;
  resolve(): void;
}

interface Pending {
  txn: Txn;
  resolve(result: TxnResult): void;
  reject(err: unknown): void;
}

/**
 * etcd's MVCC on an append-only revision log held by a {@link LogStore}.
 * Writes from concurrent callers are gathered into one store transaction
 * (group commit); each txn runs under its own savepoint, so a failing one
 * leaves no row behind and the others still commit. Callers are answered
 * only after the commit. One poll loop publishes new rows to watchers.
 */
export class LogBackend implements Backend {
  #queue: Pending[] = [];
  #flushing = false;
  #writeChain: Promise<unknown> = Promise.resolve();
  #current = 0;
  readonly #fanout = new Fanout();
  readonly #counts = new CountCache();
  /** Highest revision handed to watchers; rows above it are not yet published. */
  #polled = 0;
  #polling = false;
  #pollAgain = false;
  #pollTimer?: ReturnType<typeof setInterval>;
  #syncWaiters: SyncWaiter[] = [];
  /** A missing id the poll loop saw, and when it first saw it. */
  #gap?: { id: number; since: number };
  #closed = false;

  constructor(
    private readonly store: LogStore,
    private readonly options: LogBackendOptions,
  ) {}

  get #reader() {
    return this.store.reader;
  }

  /** Serialises write transactions (batches, compaction, start-up, fills). */
  #write<T>(fn: (tx: LogWriteTx) => Promise<T>): Promise<T> {
    const next = this.#writeChain.then(() => this.store.write(fn));
    this.#writeChain = next.catch(() => {});
    return next;
  }

  async start(): Promise<void> {
    await this.#write(async (tx) => {
      const rows = await tx.rowsNamed(COMPACT_KEY);
      if (rows.length === 0) {
        await tx.append({
          name: COMPACT_KEY,
          created: true,
          deleted: false,
          createRevision: 0,
          prevRevision: 0,
          lease: 0,
          value: new Uint8Array(0),
          version: 0,
        });
      } else if (rows.length > 1) {
        // Legacy stores appended a row per compaction: keep the highest compact revision.
        const keep = rows.reduce((a, b) => b.prevRevision > a.prevRevision ? b : a);
        for (const r of rows) if (r !== keep) await tx.deleteRow(r.id);
        this.options.logger.info("removed duplicate compact_rev_key rows", {
          removed: rows.length - 1,
        });
      }
      const health = await tx.latest(HEALTH_KEY);
      if (!health || health.deleted) {
        await tx.append({
          name: HEALTH_KEY,
          created: true,
          deleted: false,
          createRevision: 0,
          prevRevision: health?.id ?? 0,
          lease: 0,
          value: HEALTH_VALUE,
          version: 1,
        });
      }
    });
    this.#current = (await this.#reader.revisions()).current;
    this.#polled = this.#current;
    this.#pollTimer = setInterval(() => this.#schedulePoll(), POLL_INTERVAL_MS);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    this.#fanout.clear();
    await this.#writeChain;
    while (this.#polling) await new Promise((r) => setTimeout(r, 5));
    for (const w of this.#syncWaiters) w.resolve();
    this.#syncWaiters = [];
    await this.store.close();
  }

  syncedRevision(): number {
    return this.#polled;
  }

  waitForSyncTo(revision: number): Promise<void> {
    if (this.#polled >= revision || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push({ revision, resolve });
      this.#schedulePoll();
    });
  }

  /** Coalesces wake-ups: local commits, the timer, sync waiters. */
  #schedulePoll(): void {
    if (this.#closed) return;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    this.#polling = true;
    queueMicrotask(() => this.#pollLoop());
  }

  async #pollLoop(): Promise<void> {
    try {
      do {
        this.#pollAgain = false;
        if (this.#closed) break;
        try {
          if (await this.#pollOnce()) this.#pollAgain = true;
        } catch (err) {
          this.options.logger.error("watch poll failed", { error: String(err) });
          break;
        }
      } while (this.#pollAgain);
    } finally {
      this.#polling = false;
    }
  }

  /**
   * Publishes the rows after the poll position in id order. Returns true when
   * it should run again at once (a full batch, or a gap just filled).
   */
  async #pollOnce(): Promise<boolean> {
    const limit = this.options.pollBatchSize;
    const rows = await this.#reader.events(this.#polled, 0, limit);
    const events: Event[] = [];
    let position = this.#polled;
    let again = rows.length >= limit;
    for (const row of rows) {
      if (row.id !== position + 1) {
        const missing = position + 1;
        const now = performance.now();
        if (!this.#gap || this.#gap.id !== missing) {
          // First sighting: the row may still be committing elsewhere; look again shortly.
          this.#gap = { id: missing, since: now };
          setTimeout(() => this.#schedulePoll(), this.store.fillRetryDelayMs);
          break;
        }
        if (now - this.#gap.since < GAP_GIVE_UP_MS) {
          await this.#fill(missing);
          again = true;
          break;
        }
        this.options.logger.warn(`GAP skipping revision ${missing}`);
        this.#gap = undefined;
      }
      position = row.id;
      if (!isInternal(row)) events.push(rowToEvent(row));
    }
    if (position === this.#polled) {
      this.#notifySynced();
      return again;
    }
    this.#polled = position;
    this.#advance(position);
    if (events.length > 0) this.#fanout.publish(events);
    this.#notifySynced();
    return again;
  }

  /** Takes a missing id with a `gap-<id>` tombstone, unless its real row lands first. */
  async #fill(id: number): Promise<void> {
    try {
      await this.#write(async (tx) => await tx.fill(id));
    } catch {
      // The real row won the race; the next poll reads it.
    }
  }

  #notifySynced(): void {
    if (this.#syncWaiters.length === 0) return;
    const waiting: SyncWaiter[] = [];
    for (const w of this.#syncWaiters) {
      if (this.#polled >= w.revision) w.resolve();
      else waiting.push(w);
    }
    this.#syncWaiters = waiting;
  }

  async watch(
    key: string,
    end: string,
    startRevision: number,
    sink: EventSink,
  ): Promise<WatchResult> {
    const name = end === "" ? redirectKey(key) : key;
    const present: EventSink = (events) => sink(presentEvents(events));
    if (startRevision > 0) {
      const { compact } = await this.#reader.revisions();
      if (startRevision <= compact) return { compactRevision: compact, cancel: () => {} };
    }
    // Read the position and subscribe in one synchronous step, so no batch slips between.
    const position = this.#polled;
    const from = startRevision > 0 ? startRevision : position + 1;
    const sub = this.#fanout.add(name, end, Math.max(from, position + 1), present);
    const cancel = () => this.#fanout.remove(sub);
    try {
      // Catch up from the log up to what the poll loop had published; it delivers the rest.
      const rangeEnd = end === FROM_KEY ? null : end;
      for (let after = from - 1; after < position;) {
        const rows = await this.#reader.events(
          after,
          position,
          this.options.pollBatchSize,
          name,
          rangeEnd,
        );
        if (rows.length === 0) break;
        const events = rows.filter((r) => !isInternal(r)).map(rowToEvent);
        if (events.length > 0) await present(events);
        after = rows[rows.length - 1].id;
      }
    } catch (err) {
      cancel();
      throw err;
    }
    sub.release();
    return { cancel };
  }

  currentRevision(): number {
    return this.#current;
  }

  #advance(revision: number): void {
    if (revision > this.#current) this.#current = revision;
  }

  async range(request: RangeRequest): Promise<RangeResult> {
    const result = await rangeLog(this.#reader, request, this.#counts.take(request));
    this.#counts.remember(request, result);
    this.#advance(result.revision);
    return result;
  }

  txn(txn: Txn): Promise<TxnResult> {
    checkTxn(txn);
    return new Promise((resolve, reject) => {
      this.#queue.push({ txn, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    const outcomes: ({ ok: true; result: TxnResult } | { ok: false; err: unknown })[] = [];
    try {
      await this.#write(async (tx) => {
        for (const p of batch) {
          await tx.savepoint();
          try {
            const result = await new TxnRunner(tx).run(p.txn);
            await tx.releaseSavepoint();
            outcomes.push({ ok: true, result });
          } catch (err) {
            await tx.rollbackToSavepoint();
            outcomes.push({ ok: false, err: this.#classify(err) });
          }
        }
      });
      this.options.metrics?.txnBatchSize.observe(batch.length);
      this.#schedulePoll();
      batch.forEach((p, i) => {
        const o = outcomes[i];
        if (o.ok) {
          this.#advance(o.result.revision);
          p.resolve(o.result);
        } else p.reject(o.err);
      });
    } catch (err) {
      this.options.logger.error("write transaction failed", { error: String(err) });
      const failure = this.#classify(err);
      for (const p of batch) p.reject(failure);
    } finally {
      if (this.#queue.length > 0) setImmediate(() => this.#flush());
      else this.#flushing = false;
    }
  }

  #classify(err: unknown): unknown {
    if (err instanceof BackendError) return err;
    if (this.store.isConflict(err)) {
      return new BackendError(
        "unavailable",
        "etcdserver: request timed out, possibly due to conflict",
      );
    }
    return new BackendError("unavailable", `etcdserver: ${(err as Error)?.message ?? err}`);
  }

  async leasedKeys(): Promise<LeasedKeys> {
    const { current } = await this.#reader.revisions();
    const rows = await this.#reader.leased(current);
    const keys = rows.map((row) => {
      const kv = presentKv(rowToKv(row, true));
      return { key: kv.key, lease: kv.lease, modRevision: kv.modRevision };
    });
    return { revision: current, keys };
  }

  leaseRecords(): Promise<LeaseRecord[]> {
    return this.store.leaseRecords();
  }

  saveLease(lease: LeaseRecord): Promise<void> {
    return this.#write(async (tx) => await tx.saveLease(lease));
  }

  deleteLease(id: number): Promise<void> {
    return this.#write(async (tx) => await tx.deleteLease(id));
  }

  async status(): Promise<Status> {
    const { current, compact } = await this.#reader.revisions();
    const dbSize = await this.store.size();
    this.#advance(current);
    return { revision: current, compactRevision: compact, dbSize };
  }

  /**
   * Deletes history up to `revision` in batches of `compactBatchSize`
   * revisions, never the newest `compactMinRetain`; creates no revision.
   */
  async compact(revision: number): Promise<number> {
    const { current, compact } = await this.#reader.revisions();
    if (revision > current) throw futureRevision();
    if (revision <= compact) throw compacted();
    // Rows above what the poll loop published may not be compacted; catch it up first.
    await this.waitForSyncTo(revision);
    const { compactBatchSize, compactMinRetain, logger } = this.options;
    const started = performance.now();
    let from = compact;
    let batches = 0;
    while (from < revision) {
      const step = Math.min(from + compactBatchSize, revision);
      // Another process may have compacted meanwhile: resynchronise and go on from there.
      const batchStarted = performance.now();
      const outcome = await this.#write(async (tx) => {
        const now = await tx.revisions();
        if (now.compact !== from) return { raced: true, reached: now.compact };
        // Never compact rows the poll loop has not published yet.
        const target = Math.min(step, now.current - compactMinRetain, this.#polled);
        if (target <= from) return { raced: false, reached: from };
        await tx.compactTo(target);
        return { raced: false, reached: target };
      });
      if (!outcome.raced) {
        if (outcome.reached === from) break;
        batches++;
      }
      const took = performance.now() - batchStarted;
      if (took > this.options.compactTimeout) {
        // A synchronous engine cannot abandon a batch half-way; say so, and let the next run go on.
        logger.warn("compaction batch exceeded --compact-timeout; stopping this run", {
          duration: `${Math.round(took)}ms`,
          reached: outcome.reached,
        });
        from = outcome.reached;
        break;
      }
      const limited = !outcome.raced && outcome.reached < step;
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
    return (await this.#reader.revisions()).current;
  }
}
