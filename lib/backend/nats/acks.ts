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
  type MsgHdrs,
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

/** JetStream refused a publish. */
export class PublishRefused extends Error {
  constructor(readonly refusal: Refusal) {
    super(`JetStream: ${refusal.description}`);
  }
}

interface Pending {
  resolve(seq: number): void;
  reject(err: Error): void;
  deadline: number;
}

/**
 * Single publishes awaiting their JetStream acks on one inbox, for writes:
 * nats.js's request builds an error with a stack trace for each answered
 * request (its `cancel`) and a timer each; here one timer sweeps them all.
 */
export class Publisher {
  readonly #inbox = createInbox();
  readonly #sub: Subscription;
  readonly #pending = new Map<number, Pending>();
  readonly #sweeper: ReturnType<typeof setInterval>;
  #next = 0;

  constructor(private readonly nc: NatsConnection, private readonly timeoutMs: number) {
    this.#sub = nc.subscribe(`${this.#inbox}.*`, { callback: (_err, m) => this.#ack(m) });
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(1000, timeoutMs));
    Deno.unrefTimer(this.#sweeper);
  }

  /** Publishes and resolves with the stream sequence; rejects with a refusal or a timeout. */
  publish(subject: string, data: Uint8Array, headers: MsgHdrs): Promise<number> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: performance.now() + this.timeoutMs });
      this.nc.publish(subject, data, { reply: `${this.#inbox}.${id}`, headers });
    });
  }

  #ack(m: Msg): void {
    const id = Number(m.subject.slice(this.#inbox.length + 1));
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    if (m.data.length === 0) {
      p.reject(new Error(`JetStream did not take the publish: ${m.headers?.description}`));
      return;
    }
    const ack = m.json<{ seq?: number; error?: Refusal }>();
    if (ack.error) p.reject(new PublishRefused(ack.error));
    else p.resolve(ack.seq ?? 0);
  }

  #sweep(): void {
    const now = performance.now();
    for (const [id, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(id);
      p.reject(new Error(`no JetStream ack within ${this.timeoutMs} ms`));
    }
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#sub.unsubscribe();
    for (const p of this.#pending.values()) p.reject(new Error("NATS connection closed"));
    this.#pending.clear();
  }
}
