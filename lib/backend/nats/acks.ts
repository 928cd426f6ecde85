/**
 * JetStream acks of plain publishes, each with a reply subject of one inbox:
 * `js.publish` is a request per message and builds two errors for each
 * (their stack traces were a fifth of a migration's CPU), where a pipeline of
 * publishes needs only each one's sequence or refusal, with a bounded window
 * of publishes in flight.
 *
 * @module
 */
import {
  createInbox,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";

/** A refusal JetStream sent for one publish. */
export interface Refusal {
  /** JetStream's error code (10071: wrong last sequence). */
  err_code?: number;
  description?: string;
}

/**
 * Called with the index of each publish (in the order of {@link Acks.next})
 * and its sequence, or its refusal; returns true if the caller takes the
 * refusal itself, false (or nothing) if it fails the pipeline.
 */
export type OnAck = (index: number, seq: number, refusal?: Refusal) => boolean | void;

export class Acks {
  readonly #inbox = createInbox();
  readonly #sub: Subscription;
  #sent = 0;
  #acked = 0;
  #failure?: Error;
  #waiting?: () => void;
  #timer?: ReturnType<typeof setTimeout>;

  /** `window` publishes in flight at most; an ack that does not come in `timeoutMs` fails. */
  constructor(
    nc: NatsConnection,
    private readonly window: number,
    private readonly timeoutMs: number,
    private readonly onAck: OnAck = () => false,
  ) {
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#ack(m) });
  }

  /** The reply subject of the next publish. */
  next(): string {
    return `${this.#inbox}.${this.#sent++}`;
  }

  #ack(m: Msg): void {
    const index = Number(m.subject.slice(this.#inbox.length + 1));
    if (m.data.length === 0) {
      // A status without a body: no stream listens (503), or another refusal.
      this.#failure ??= new Error(`JetStream did not take the publish: ${m.headers?.description}`);
    } else {
      const ack = m.json<{ seq?: number; error?: Refusal }>();
      if (!ack.error) this.onAck(index, ack.seq ?? 0);
      else if (!this.onAck(index, 0, ack.error)) {
        this.#failure ??= new Error(`JetStream: ${ack.error.description}`);
      }
    }
    this.#acked++;
    this.#waiting?.();
  }

  /** Waits until an ack comes (or the timeout, a failure, ends the wait). */
  async #progress(): Promise<void> {
    const before = this.#acked;
    await new Promise<void>((resolve) => {
      this.#waiting = resolve;
      this.#timer = setTimeout(resolve, this.timeoutMs);
    });
    clearTimeout(this.#timer);
    this.#waiting = undefined;
    if (this.#acked === before && !this.#failure) {
      this.#failure = new Error(`no JetStream ack within ${this.timeoutMs} ms`);
    }
  }

  /** True when a window of publishes waits for acks. */
  get full(): boolean {
    return this.#sent - this.#acked >= this.window || this.#failure !== undefined;
  }

  /**
   * Resolves when half the window is free; throws the first failure. Not as
   * soon as one publish may go: each wait lets nats.js flush what was
   * published, so refilling half a window takes one socket write, not one each.
   */
  async room(): Promise<void> {
    while (!this.#failure && this.#sent - this.#acked > this.window >>> 1) await this.#progress();
    if (this.#failure) throw this.#failure;
  }

  /** Resolves when every publish is acked; throws the first failure. */
  async all(): Promise<void> {
    while (!this.#failure && this.#acked < this.#sent) await this.#progress();
    if (this.#failure) throw this.#failure;
  }

  close(): void {
    this.#sub.unsubscribe();
  }
}
