import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { isInternal, rowToEvent } from "./events.ts";
import { Fanout } from "./fanout.ts";
import type { EventRow, PollReader, Revisions } from "./log.ts";
import { subscribe } from "./subscribe.ts";
import type { Event, EventSink, WatchResult } from "../types.ts";

/**
 * How long an id may stay missing before the poll loop skips it: longer than
 * the engines' lock timeouts (10 s), which bound how long a transaction can
 * hold an id it has not committed, and so how long a fill waits for one.
 */
const GAP_GIVE_UP_MS = 15_000;
/** Missing ids taken per pass at most (a huge jump of ids is taken over several passes). */
const MAX_FILL = 1000;
/**
 * How long an id must have stood missing before it is filled, at least: another
 * transaction's insert commits within a few milliseconds, and a fill that
 * races it costs a statement that waits on its lock (or makes it run again).
 */
const GAP_STAND_MS = 15;
/**
 * The longest wait between two fills that met an id held by a transaction in
 * flight: the wait doubles from the stand time while they keep meeting one,
 * so a slow batch of another server costs a few attempts, not one per stand.
 */
const HELD_BACKOFF_MAX_MS = 120;
/** The shortest poll interval, where the timer keeps finding other processes' rows, unless set. */
const MIN_POLL_MS = 1;
/**
 * Bytes of this process's own rows held for publishing at most (their values,
 * and a row's bookkeeping counted as 64): beyond, they are dropped and read
 * back from the store like any other row.
 */
const MAX_OWN_BYTES = 64 << 20;

/** What an own row held costs, as {@link MAX_OWN_BYTES} counts it. */
function ownBytes(row: EventRow): number {
  return 64 + row.value.length + row.oldValue.length;
}

export interface WatchHubOptions {
  /** Rows fetched per poll query. */
  pollBatchSize: number;
  /**
   * How long to wait for a missing id to commit before filling it (ms); at
   * least {@link GAP_STAND_MS}.
   */
  fillRetryDelayMs: number;
  /**
   * How often to look for other processes' rows (ms) while none come: the
   * timer drops to {@link busyPollIntervalMs} while it finds rows, and
   * doubles back up to this while it finds none.
   */
  pollIntervalMs: number;
  /** The shortest interval the timer drops to (ms); {@link MIN_POLL_MS} unless set. */
  busyPollIntervalMs?: number;
  /**
   * True where every commit of every process announces itself (PostgreSQL's
   * NOTIFY): the timer is only a safety net there and keeps its interval.
   */
  announced?: boolean;
  logger: Logger;
  metrics?: KineMetrics;
}

interface SyncWaiter {
  revision: number;
  resolve(): void;
}

/** What the hub needs of the log: committed reads, and a way to take missing ids. */
export interface HubLog {
  reader: PollReader & { revisions(): Promise<Revisions> | Revisions };
  /**
   * Inserts `gap-<id>` tombstones for the ids that are still free; returns
   * how many it inserted, or null (nothing filled) when one of them is held
   * by a transaction still in flight, where the engine can tell without
   * waiting for it (elsewhere it waits for that transaction to end).
   */
  fill(ids: number[]): Promise<number | null>;
}

/** What woke the poll loop. */
export type WakeSource = "local" | "notify" | "poll";

/**
 * The watch side of the log: one poll loop per process publishes committed
 * rows in id order to the fan-out, and new watches catch up from history
 * before they join it. Local commits and other processes' notifications wake
 * the loop at once; a timer picks up what nothing announced.
 *
 * Ids can be missing below the newest row: an insert of another transaction
 * (or process) that has not committed yet, or one that rolled back. The loop
 * publishes up to the first missing id, holds the rows above it, and then
 * reads only the missing ids — where the engine can (MySQL), in a read that
 * waits for the transactions holding them, so each is published as its
 * transaction commits. Missing ids of the first run that have stood missing
 * for a while are filled with tombstones in one statement, which leaves the
 * ids that committed meanwhile alone. Where the engine can tell
 * (PostgreSQL, MySQL), a fill that meets an id still held by a transaction in
 * flight fills nothing and gives up at once: that row will commit or roll
 * back, and the loop looks again after another while, never blocked behind
 * it. Elsewhere the fill waits for it (bounded by the lock timeout).
 */
export class WatchHub {
  readonly #fanout = new Fanout();
  /** Highest revision handed to watchers; rows above it are not yet published. */
  #polled = 0;
  #polling = false;
  #pollAgain = false;
  #pollTimer?: ReturnType<typeof setTimeout>;
  /** The timer's current interval (ms), between the busy interval and pollIntervalMs. */
  #pollDelay = 0;
  #syncWaiters: SyncWaiter[] = [];
  /** Ids found missing, and when each was first seen missing. */
  #missing = new Map<number, number>();
  /**
   * Rows read above the first missing id, in id order, held until the ids
   * below them are settled: the next poll reads only up to the highest
   * missing id instead of everything above the first one again.
   */
  #ahead: EventRow[] = [];
  #retryTimer?: ReturnType<typeof setTimeout>;
  /** No fill before this time: the last one met an id still held by a transaction in flight. */
  #fillAfter = 0;
  /** The wait after the next fill that meets a held id; back to the stand time once no id is missing. */
  #heldBackoff = 0;
  #closed = false;
  /**
   * Rows this process committed, in id order, not yet published: published
   * from here, without reading them back, when they are the log's next ids.
   */
  #own: EventRow[] = [];
  #ownBytes = 0;
  /** Something other than this process's own commits asked for a read of the store. */
  #readWanted = false;
  /** Called when the poll loop stops. */
  #idle: (() => void)[] = [];
  readonly #appliers: ((events: Event[]) => void)[] = [];

  constructor(
    private readonly log: HubLog,
    private readonly options: WatchHubOptions,
    /** Told of every position the loop publishes. */
    private readonly onPublished: (revision: number) => void,
    /** The highest revision acknowledged to a client: where "from now" starts. */
    private readonly current: () => number,
  ) {}

  /**
   * Hands every published batch to `apply` (the key index) before watchers
   * get it, in the same synchronous step that moves {@link polled}.
   */
  onPublish(apply: (events: Event[]) => void): void {
    this.#appliers.push(apply);
  }

  /** Starts polling after `position` (the store's current revision). */
  start(position: number): void {
    this.#polled = position;
    this.#pollDelay = this.options.pollIntervalMs;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#pollTimer = setTimeout(() => this.#tick(), this.#pollDelay);
  }

  /**
   * A timer poll; the interval shrinks while it finds other processes' rows
   * (above what this process had acknowledged) and grows back while it finds none.
   */
  async #tick(): Promise<void> {
    const known = Math.max(this.#polled, this.current());
    this.wake("poll");
    while (this.#polling && !this.#closed) await this.#settled();
    const found = this.#polled > known && !this.options.announced;
    const busy = Math.min(
      this.options.busyPollIntervalMs ?? MIN_POLL_MS,
      this.options.pollIntervalMs,
    );
    this.#pollDelay = found ? busy : Math.min(this.#pollDelay * 2, this.options.pollIntervalMs);
    this.#schedule();
  }

  /** Resolves when the running poll loop has stopped. */
  #settled(): Promise<void> {
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Told of another process's commit up to `revision` (a notification): nothing to do if published. */
  notified(revision: number): void {
    if (revision > 0 && revision <= this.#polled) return;
    this.wake("notify");
  }

  /** Stops the loop and releases every waiter; resolves once a running poll has finished. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#pollTimer);
    clearTimeout(this.#retryTimer);
    this.#fanout.clear();
    this.#ahead = [];
    this.#dropOwn();
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
      // A waiter still waiting after the own rows are published makes the loop read.
      this.#run();
    });
  }

  /**
   * Rows this process has just committed (in id order, above any given
   * before), exactly as the store holds them: the loop publishes them without
   * reading them back when they are the next ids after its position, which
   * means no other writer's row can be among or below them. Otherwise (ids of
   * other processes in between, a gap) it reads the store as always.
   */
  committed(rows: EventRow[]): void {
    if (this.#closed || rows.length === 0) return;
    const last = this.#own[this.#own.length - 1];
    if (last && rows[0].id <= last.id) this.#dropOwn();
    for (const row of rows) {
      this.#own.push(row);
      this.#ownBytes += ownBytes(row);
    }
    if (this.#ownBytes > MAX_OWN_BYTES) this.#dropOwn();
  }

  #dropOwn(): void {
    this.#own = [];
    this.#ownBytes = 0;
  }

  /** Coalesces wake-ups: local commits, notifications, the timer, sync waiters. */
  wake(source?: WakeSource): void {
    if (this.#closed) return;
    if (source) this.options.metrics?.watchWakeups.labels(source).inc();
    if (source !== "local") this.#readWanted = true;
    this.#run();
  }

  /** Runs the poll loop, or has the running one go round again. */
  #run(): void {
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
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }

  /**
   * Publishes the rows after the poll position in id order, up to the first
   * missing id. Returns true when it should run again at once (a full
   * batch, gaps just filled or settled, or a wait for their holders to make).
   */
  async #pollOnce(): Promise<boolean> {
    // This process's own commits right after the position need no read, unless something else
    // (another process's commit, the timer, a read of a revision beyond them) asked for one.
    if (
      this.#publishOwn() && !this.#readWanted && this.#polled >= this.current() &&
      this.#syncWaiters.length === 0
    ) return false;
    this.#readWanted = false;
    const limit = this.options.pollBatchSize;
    const reader = this.log.reader;
    // With rows held above missing ids, only those ids are read: the held rows are not read
    // again, and what committed above them is read once they are settled.
    const gaps = this.#gaps();
    const waited = gaps.length > 0 && reader.waits === true;
    // A read that does not wait takes what came above the held rows along with the missing ids:
    // once they have settled, nothing is left for a read a round trip later.
    const after = gaps.length > 0 && !waited && reader.eventsOfAndAfter
      ? this.#ahead[this.#ahead.length - 1].id
      : 0;
    const read = gaps.length === 0
      ? await reader.events(this.#polled, 0, limit)
      : after > 0
      ? await reader.eventsOfAndAfter!(gaps, after, limit)
      : await this.#readGaps(gaps, waited);
    this.options.metrics?.watchRowsRead.inc(read.length);
    const rows = gaps.length > 0 ? merged(this.#ahead, read) : read;
    /** The read stopped at its limit: there may be more above it. */
    const full = gaps.length === 0
      ? read.length >= limit
      : after > 0 && read.length >= gaps.length + limit;
    /** Ids up to here were looked at by this read: only those may be given up. */
    const looked = full ? read[read.length - 1].id : Infinity;
    this.#ahead = [];
    const now = performance.now();
    const events: Event[] = [];
    let position = this.#polled;
    let seen = position;
    /** Missing ids, from the first one the loop must wait for. */
    const missing: number[] = [];
    for (const row of rows) {
      let id = seen + 1;
      for (; id < row.id && missing.length < MAX_FILL; id++) {
        if (missing.length === 0 && id <= looked && this.#givenUp(id, now)) position = id;
        else missing.push(id);
      }
      // More missing ids than one pass takes: the rows above them are read again later.
      if (id < row.id) break;
      seen = row.id;
      if (missing.length > 0) {
        this.#ahead.push(row);
        continue;
      }
      position = row.id;
      if (!isInternal(row)) events.push(rowToEvent(row));
    }
    this.#publish(position, events);
    const stand = Math.max(this.options.fillRetryDelayMs, GAP_STAND_MS);
    if (missing.length === 0) {
      this.#heldBackoff = stand;
      // A full read, or settled gaps with rows above them not read yet: more to read at once.
      return full || (gaps.length > 0 && after === 0);
    }
    for (const id of missing) if (!this.#missing.has(id)) this.#missing.set(id, now);
    // Where a read can wait for the transactions holding missing ids, the next one does.
    if (reader.waits && !waited) return true;
    // Only the first run is filled: it alone holds the loop back, and an id of a later run
    // that a transaction in flight holds would make the fill of all of them give up.
    const above = this.#ahead.length > 0 ? this.#ahead[0].id : Infinity;
    const run = missing.filter((id) => id < above);
    const due = now < this.#fillAfter
      ? []
      : run.filter((id) => now - this.#missing.get(id)! >= stand);
    if (due.length === 0) {
      const oldest = Math.min(...run.map((id) => this.#missing.get(id)!));
      const wait = Math.max(stand - (now - oldest), this.#fillAfter - now);
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.wake(), Math.max(1, wait));
      return false;
    }
    if (await this.#fill(due)) return true;
    // A transaction in flight holds one: its commit (or the timer) brings the loop back.
    const backoff = Math.max(this.#heldBackoff, stand);
    this.#heldBackoff = Math.min(backoff * 2, HELD_BACKOFF_MAX_MS);
    this.#fillAfter = performance.now() + backoff;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.wake(), backoff);
    return false;
  }

  /**
   * Moves the position to `position`, handing `events` (the rows up to it)
   * to the key index and the watchers.
   */
  #publish(position: number, events: Event[]): void {
    if (position !== this.#polled) {
      if (events.length > 0) { for (const apply of this.#appliers) apply(events); }
      this.#polled = position;
      this.onPublished(position);
      if (events.length > 0) this.#fanout.publish(events);
    }
    this.#notifySynced();
    if (this.#missing.size > 0) {
      const now = performance.now();
      const stood = this.options.metrics?.watchGapSeconds;
      for (const [id, since] of this.#missing) {
        if (id > position) continue;
        stood?.observe((now - since) / 1000);
        this.#missing.delete(id);
      }
    }
    let done = 0;
    while (done < this.#own.length && this.#own[done].id <= position) {
      this.#ownBytes -= ownBytes(this.#own[done++]);
    }
    if (done > 0) this.#own.splice(0, done);
  }

  /**
   * Publishes the run of own rows that continues the position id by id;
   * false if there is none. Not while rows are held above a missing id:
   * those are settled by a read.
   */
  #publishOwn(): boolean {
    const own = this.#own;
    if (this.#ahead.length > 0 || own.length === 0 || own[0].id !== this.#polled + 1) return false;
    let end = 1;
    while (end < own.length && own[end].id === own[end - 1].id + 1) end++;
    const events: Event[] = [];
    for (let i = 0; i < end; i++) if (!isInternal(own[i])) events.push(rowToEvent(own[i]));
    this.options.metrics?.watchOwnRows.inc(end);
    this.#publish(own[end - 1].id, events);
    return true;
  }

  /** The ids missing below the rows held ahead, ascending (at most {@link MAX_FILL}). */
  #gaps(): number[] {
    const gaps: number[] = [];
    let prev = this.#polled;
    for (const row of this.#ahead) {
      for (let id = prev + 1; id < row.id; id++) gaps.push(id);
      prev = row.id;
    }
    return gaps;
  }

  /**
   * The rows of missing ids that exist now; `waiting`, once the transactions
   * holding them have ended. A waiting read that fails (its lock wait timed
   * out) is made again without waiting.
   */
  async #readGaps(gaps: number[], waiting: boolean): Promise<EventRow[]> {
    if (waiting) {
      try {
        return await this.log.reader.eventsOf(gaps, true);
      } catch (err) {
        this.options.logger.warn("waiting watch read failed", { error: String(err) });
      }
    }
    return await this.log.reader.eventsOf(gaps, false);
  }

  /** True for an id missing longer than {@link GAP_GIVE_UP_MS}: it is skipped, and said so. */
  #givenUp(id: number, now: number): boolean {
    const since = this.#missing.get(id);
    if (since === undefined || now - since < GAP_GIVE_UP_MS) return false;
    this.options.logger.warn(`GAP skipping revision ${id}`);
    this.options.metrics?.gapFillTotal.labels("skipped").inc();
    this.#missing.delete(id);
    return true;
  }

  /**
   * Takes missing ids with `gap-<id>` tombstones, except those whose real rows
   * land first; false when a transaction in flight holds one (nothing filled).
   */
  async #fill(ids: number[]): Promise<boolean> {
    const gaps = this.options.metrics?.gapFillTotal;
    try {
      const filled = await this.log.fill(ids);
      if (filled === null) {
        gaps?.labels("held").inc(ids.length);
        return false;
      }
      gaps?.labels("filled").inc(filled);
      // The others committed while the fill waited for their transactions: the next read has them.
      gaps?.labels("failed").inc(ids.length - filled);
    } catch (err) {
      // Most likely a lock timeout behind a transaction that holds an id for long; look again.
      this.options.logger.warn("gap fill failed", { ids: ids.length, error: String(err) });
      gaps?.labels("failed").inc(ids.length);
    }
    return true;
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
    const compact = startRevision > 0 ? (await this.log.reader.revisions()).compact : 0;
    // The position is read in the same synchronous step as the subscription.
    return await subscribe(
      {
        compact,
        fanout: this.#fanout,
        reader: this.log.reader,
        position: this.#polled,
        now: this.current(),
        batchSize: this.options.pollBatchSize,
      },
      key,
      end,
      startRevision,
      sink,
    );
  }
}

/** Rows held and rows read of the ids missing among them, in id order (each list is). */
function merged(held: EventRow[], read: EventRow[]): EventRow[] {
  const out: EventRow[] = [];
  let i = 0;
  for (const row of read) {
    while (i < held.length && held[i].id < row.id) out.push(held[i++]);
    out.push(row);
  }
  while (i < held.length) out.push(held[i++]);
  return out;
}
