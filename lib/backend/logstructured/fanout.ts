import { keyInRange } from "../keys.ts";
import type { Event, EventSink } from "../types.ts";

/** One subscriber: a key range, the first revision it wants, and its sink. */
class Subscriber {
  /** Live batches held back while the subscriber's catch-up query runs. */
  held: Event[][] | null = [];
  constructor(
    readonly key: string,
    readonly end: string,
    readonly from: number,
    readonly sink: EventSink,
  ) {}

  matches(key: string): boolean {
    return keyInRange(key, this.key, this.end);
  }

  /** Hands over what was held and switches to live delivery. */
  release(): void {
    const held = this.held ?? [];
    this.held = null;
    for (const batch of held) this.sink(batch);
  }
}

/**
 * Fans each batch the poll loop publishes out to the subscribers whose range
 * it touches, synchronously and in order; it never waits for a subscriber.
 */
export class Fanout {
  readonly #subs = new Set<Subscriber>();

  get size(): number {
    return this.#subs.size;
  }

  /** Subscribes in holding mode; call `release()` on the result once caught up. */
  add(key: string, end: string, from: number, sink: EventSink): Subscriber {
    const sub = new Subscriber(key, end, from, sink);
    this.#subs.add(sub);
    return sub;
  }

  remove(sub: Subscriber): void {
    this.#subs.delete(sub);
  }

  publish(events: Event[]): void {
    for (const sub of this.#subs) {
      let mine: Event[] | undefined;
      for (const e of events) {
        if (e.kv.modRevision >= sub.from && sub.matches(e.kv.key)) (mine ??= []).push(e);
      }
      if (!mine) continue;
      if (sub.held) sub.held.push(mine);
      else sub.sink(mine);
    }
  }

  clear(): void {
    this.#subs.clear();
  }
}

export type { Subscriber };
