/**
 * Call deadlines (`grpc-timeout`) on one timer per distinct timeout instead of
 * one per call: a client sends the same timeout with every call, so the calls
 * of one timeout expire in the order they came, and a queue per timeout needs
 * only a timer for its oldest call. A timer per call cost more than the rest
 * of a small call's set-up (Deno's timers are objects with a heap of their own).
 */

/** A deadline that may still expire; `cancel()` once the call has ended. */
export interface Deadline {
  cancel(): void;
}

interface Entry extends Deadline {
  /** When it expires, on the `performance.now()` clock. */
  readonly at: number;
  readonly expire: () => void;
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

/** Deadlines of every call with a timeout, grouped by timeout. */
export class Deadlines {
  readonly #queues = new Map<number, Queue>();

  /** Calls `expire` in `ms` unless the returned deadline is cancelled first. */
  add(ms: number, expire: () => void): Deadline {
    let q = this.#queues.get(ms);
    if (!q) this.#queues.set(ms, q = new Queue());
    this.#dropDone(q);
    const entry: Entry = {
      at: performance.now() + ms,
      expire,
      done: false,
      cancel: () => {
        if (entry.done) return;
        entry.done = true;
        if (--q.live === 0) this.#remove(ms, q);
      },
    };
    // Deadlines keep their order with a timeout: only a clock going back could break it.
    q.entries.push(entry);
    q.live++;
    if (q.timer === undefined) this.#arm(ms, q);
    return { cancel: entry.cancel };
  }

  #remove(ms: number, q: Queue): void {
    clearTimeout(q.timer);
    if (this.#queues.get(ms) === q) this.#queues.delete(ms);
    q.entries = [];
    q.head = 0;
    q.timer = undefined;
  }

  /** Skips the ended calls at the head, giving back their slots now and then. */
  #dropDone(q: Queue): void {
    while (q.head < q.entries.length && q.entries[q.head].done) q.head++;
    if (q.head > 1024 && q.head * 2 > q.entries.length) {
      q.entries = q.entries.slice(q.head);
      q.head = 0;
    }
  }

  #arm(ms: number, q: Queue): void {
    const first = q.entries[q.head];
    q.timer = setTimeout(() => this.#fire(ms, q), Math.max(0, first.at - performance.now()));
  }

  #fire(ms: number, q: Queue): void {
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
    if (q.live === 0) this.#remove(ms, q);
    else this.#arm(ms, q);
    for (const e of due) e.expire();
  }
}
