/**
 * The lease bucket's records as this process has read them from the bucket's
 * stream, kept by an ordered consumer that starts at each key's last message
 * and then follows every change. Listing every lease is then one stream info
 * request (the stream's last sequence) and a wait for this copy to reach it,
 * not a key listing: the KV client's `keys()` makes a consumer per call, and
 * one that misses its last message waits for the next idle heartbeat (30 s
 * after the client re-creates it), which held up lease expiry and shutdown.
 *
 * @module
 */
import {
  type ConsumerMessages,
  DeliverPolicy,
  type JetStreamClient,
  type JsMsg,
} from "@nats-io/jetstream";
import type { LeaseRecord } from "../types.ts";

/** How long one pull of the consumer waits; it heartbeats every half of it. */
const EXPIRES_MS = 2000;

interface Waiter {
  seq: number;
  done(reached: boolean): void;
}

/** Every lease record of one lease bucket, following its stream. */
export class LeaseMirror {
  readonly #records = new Map<string, LeaseRecord>();
  #applied = 0;
  #waiters: Waiter[] = [];
  #messages?: ConsumerMessages;

  /**
   * @param stream the lease bucket's stream (`KV_<bucket>`)
   * @param prefix the subject prefix of its keys (`$KV.<bucket>.`)
   * @param skip keys that are not lease records (roles) start with this
   */
  constructor(
    private readonly js: JetStreamClient,
    private readonly stream: string,
    private readonly prefix: string,
    private readonly skip: string,
  ) {}

  /** Starts following the stream from each key's last message. */
  async start(): Promise<void> {
    const consumer = await this.js.consumers.get(this.stream, {
      deliver_policy: DeliverPolicy.LastPerSubject,
      filter_subjects: `${this.prefix}>`,
    });
    this.#messages = await consumer.consume({
      callback: (m) => this.#apply(m),
      expires: EXPIRES_MS,
    });
  }

  #apply(m: JsMsg): void {
    const key = m.subject.slice(this.prefix.length);
    if (!key.startsWith(this.skip)) {
      // A delete or purge marker has no body; a record always has one.
      const record = m.data.length === 0 ? undefined : parseRecord(m.data);
      if (record) this.#records.set(key, record);
      else this.#records.delete(key);
    }
    this.#applied = Math.max(this.#applied, m.seq);
    if (this.#waiters.length === 0) return;
    const still: Waiter[] = [];
    for (const w of this.#waiters) {
      if (w.seq <= this.#applied) w.done(true);
      else still.push(w);
    }
    this.#waiters = still;
  }

  /** True once the copy has applied the stream's message `seq` (false after `timeoutMs`). */
  reach(seq: number, timeoutMs: number): Promise<boolean> {
    if (seq <= this.#applied) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter: Waiter = {
        seq,
        done: (reached) => {
          clearTimeout(timer);
          resolve(reached);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** The records as applied so far. */
  records(): LeaseRecord[] {
    return [...this.#records.values()];
  }

  async close(): Promise<void> {
    for (const w of this.#waiters) w.done(false);
    this.#waiters = [];
    await this.#messages?.close().catch(() => {});
  }
}

function parseRecord(data: Uint8Array): LeaseRecord | undefined {
  try {
    return JSON.parse(new TextDecoder().decode(data)) as LeaseRecord;
  } catch {
    return undefined;
  }
}
