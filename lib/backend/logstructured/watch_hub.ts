import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { redirectKey } from "./compact_key.ts";
import { isInternal, presentEvents, rowToEvent } from "./events.ts";
import { Fanout } from "./fanout.ts";
import type { EventReader, Revisions } from "./log.ts";
import { type Event, type EventSink, FROM_KEY, type WatchResult } from "../types.ts";

const POLL_INTERVAL_MS = 1000;
/** How long a missing id may stay missing before the poll loop skips it. */
const GAP_GIVE_UP_MS = 1000;

export interface WatchHubOptions {
  /** Rows fetched per poll query. */
  pollBatchSize: number;
  /** How long to wait for a missing id to commit before filling it (ms). */
  fillRetryDelayMs: number;
  logger: Logger;
  metrics?: KineMetrics;
}

interface SyncWaiter {
  revision: number;
  resolve(): void;
}

/** What the hub needs of the log: committed reads, and a way to take a missing id. */
export interface HubLog {
  reader: EventReader & { revisions(): Promise<Revisions> | Revisions };
  /** Inserts the `gap-<id>` tombstone; rejects if the real row got there first. */
  fill(id: number): Promise<void>;
}

/**
 * The watch side of the log: one poll loop per process publishes committed
 * rows in id order (filling or, after a while, skipping ids that never
 * commit) to the fan-out, and new watches catch up from history before they
 * join it. Local commits wake the loop at once; a timer picks up rows that
 * other processes wrote.
 */
export class WatchHub {
  readonly #fanout = new Fanout();
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
    private readonly log: HubLog,
    private readonly options: WatchHubOptions,
    /** Told of every position the loop publishes. */
    private readonly onPublished: (revision: number) => void,
    /** The highest revision acknowledged to a client: where "from now" starts. */
    private readonly current: () => number,
  ) {}

  /** Starts polling after `position` (the store's current revision). */
  start(position: number): void {
    this.#polled = position;
    this.#pollTimer = setInterval(() => this.wake(), POLL_INTERVAL_MS);
  }

  /** Stops the loop and releases every waiter; resolves once a running poll has finished. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#pollTimer);
    this.#fanout.clear();
    while (this.#polling) await new Promise((r) => setTimeout(r, 5));
    for (const w of this.#syncWaiters) w.resolve();
    this.#syncWaiters = [];
  }

  /** The highest revision handed to watchers. */
  get polled(): number {
    return this.#polled;
  }

  waitForSyncTo(revision: number): Promise<void> {
    if (this.#polled >= revision || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#syncWaiters.push({ revision, resolve });
      this.wake();
    });
  }

  /** Coalesces wake-ups: local commits, the timer, sync waiters. */
  wake(): void {
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
    const rows = await this.log.reader.events(this.#polled, 0, limit);
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
          setTimeout(() => this.wake(), this.options.fillRetryDelayMs);
          break;
        }
        if (now - this.#gap.since < GAP_GIVE_UP_MS) {
          await this.#fill(missing);
          again = true;
          break;
        }
        this.options.logger.warn(`GAP skipping revision ${missing}`);
        this.options.metrics?.gapFillTotal.labels("skipped").inc();
        this.#gap = undefined;
      }
      position = row.id;
      if (!isInternal(row)) events.push(rowToEvent(row));
    }
    if (position !== this.#polled) {
      this.#polled = position;
      this.onPublished(position);
      if (events.length > 0) this.#fanout.publish(events);
    }
    this.#notifySynced();
    return again;
  }

  /** Takes a missing id with a `gap-<id>` tombstone, unless its real row lands first. */
  async #fill(id: number): Promise<void> {
    try {
      await this.log.fill(id);
      this.options.metrics?.gapFillTotal.labels("filled").inc();
    } catch {
      // The real row won the race (or holds the id until its transaction ends); read it next.
      this.options.metrics?.gapFillTotal.labels("failed").inc();
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

  /**
   * Delivers every change of `[key, end)` from `startRevision` (0 = after the
   * current revision, which may be ahead of what the loop has published):
   * history first, then the live batches.
   */
  async watch(
    key: string,
    end: string,
    startRevision: number,
    sink: EventSink,
  ): Promise<WatchResult> {
    const name = end === "" ? redirectKey(key) : key;
    const present: EventSink = (events) => sink(presentEvents(events));
    if (startRevision > 0) {
      const { compact } = await this.log.reader.revisions();
      if (startRevision <= compact) return { compactRevision: compact, cancel: () => {} };
    }
    // Read the position and subscribe in one synchronous step, so no batch slips between.
    const position = this.#polled;
    const from = startRevision > 0 ? startRevision : Math.max(this.current(), position) + 1;
    const sub = this.#fanout.add(name, end, Math.max(from, position + 1), present);
    const cancel = () => this.#fanout.remove(sub);
    try {
      // Catch up from the log up to what the poll loop had published; it delivers the rest.
      const rangeEnd = end === FROM_KEY ? null : end;
      for (let after = from - 1; after < position;) {
        const rows = await this.log.reader.events(
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
}
