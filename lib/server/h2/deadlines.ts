/**
 * Call deadlines (`grpc-timeout`) on one timer per timeout instead of one per
 * call: a client sends about the same timeout with every call (what is left of
 * its context's, so it differs by microseconds), so the calls of one timeout
 * expire in about the order they came, and a queue per timeout needs only a
 * timer for its oldest call. Timeouts within {@link SPREAD} of each other share
 * a queue; a call behind one that expires later than itself may expire that
 * much late, never early. A timer per call cost more than the rest of a small
 * call's set-up (Deno's timers are objects with a heap of their own).
 */

/** Queues per doubling of the timeout: timeouts sharing a queue differ by at most 1.1 %. */
const QUEUES_PER_DOUBLING = 64;
/** How much later than its deadline a call may expire, as a share of its timeout. */
export const SPREAD = 2 ** (1 / QUEUES_PER_DOUBLING) - 1;

/** The queue of a timeout of `ms`. */
function queueOf(ms: number): number {
  return Math.floor(Math.log2(Math.max(ms, 1)) * QUEUES_PER_DOUBLING);
}

/** What an ended call's entry calls instead of its expiry: nothing. */
function ended(): void {}

/** A deadline that may still expire; `cancel()` once the call has ended. */
export interface Deadline {
  cancel(): void;
}

interface Entry extends Deadline {
  /** When it expires, on the `performance.now()` clock. */
  readonly at: number;
  /** Dropped once the call has ended, so that an entry waiting in its queue holds no call. */
  expire: () => void;
  done: boolean;
}

/** The calls of one timeout, oldest first, from `head` on. */
class Queue {
  entries: Entry[] = [];
  head = 0;
  /** Entries not yet expired nor cancelled. */
  live = 0;
  timer?: ReturnType<typeof setTimeout>;
}

/** Deadlines of every call with a timeout, grouped by timeout (keys: {@link queueOf}). */
export class Deadlines {
  readonly #queues = new Map<number, Queue>();

  /**
   * Calls `expire` in `timeout` ms (up to {@link SPREAD} of it later) unless
   * the returned deadline is cancelled first.
   */
  add(timeout: number, expire: () => void): Deadline {
    const key = queueOf(timeout);
    let q = this.#queues.get(key);
    if (!q) this.#queues.set(key, q = new Queue());
    this.#dropDone(q);
    const entry: Entry = {
      at: performance.now() + timeout,
      expire,
      done: false,
      cancel: () => {
        if (entry.done) return;
        entry.done = true;
        entry.expire = ended;
        if (--q.live === 0) this.#remove(key, q);
      },
    };
    q.entries.push(entry);
    q.live++;
    if (q.timer === undefined) this.#arm(key, q);
    return { cancel: entry.cancel };
  }

  /** Calls held in the queues: running, or ended and not yet dropped. */
  get held(): number {
    let n = 0;
    for (const q of this.#queues.values()) n += q.entries.length - q.head;
    return n;
  }

  #remove(key: number, q: Queue): void {
    clearTimeout(q.timer);
    if (this.#queues.get(key) === q) this.#queues.delete(key);
    q.entries = [];
    q.head = 0;
    q.timer = undefined;
  }

  /**
   * Skips the ended calls at the head, giving back their slots now and then;
   * behind a call that runs long (a stream), ended calls are dropped once
   * they are most of the queue.
   */
  #dropDone(q: Queue): void {
    while (q.head < q.entries.length && q.entries[q.head].done) q.head++;
    const waiting = q.entries.length - q.head;
    if (waiting > 1024 && q.live * 2 < waiting) {
      q.entries = q.entries.filter((e, i) => i >= q.head && !e.done);
      q.head = 0;
    } else if (q.head > 1024 && q.head * 2 > q.entries.length) {
      q.entries = q.entries.slice(q.head);
      q.head = 0;
    }
  }

  #arm(key: number, q: Queue): void {
    const first = q.entries[q.head];
    q.timer = setTimeout(() => this.#fire(key, q), Math.max(0, first.at - performance.now()));
  }

  #fire(key: number, q: Queue): void {
    q.timer = undefined;
    const now = performance.now();
    const due: Entry[] = [];
    while (q.head < q.entries.length) {
      const e = q.entries[q.head];
      if (!e.done && e.at > now) break;
      q.head++;
      if (!e.done) due.push(e);
    }
    for (const e of due) e.done = true;
    q.live -= due.length;
    if (q.live === 0) this.#remove(key, q);
    else this.#arm(key, q);
    for (const e of due) e.expire();
  }
}
