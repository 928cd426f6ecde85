/**
 * One value every kine sharing a store agrees on (the auth state, the
 * alarms): kept in one row of the revision log under a reserved key (below
 * every client key, so no client range or watch reaches it; upstream kine
 * never reads it) and followed by a backend watch, so every server sees a
 * change within the poll interval. A change is a compare-and-swap on the
 * key's mod revision, retried on the newest value when another server wrote
 * first: single-key txns, which every backend supports.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import {
  type ChangeStream,
  type Event,
  type MvccStore,
  plainRange,
  type WatchResult,
} from "./types.ts";

/** How a value is stored; `decode` throws on bytes it cannot read. */
export interface RecordCodec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

export class SharedRecord<T> {
  #value: T;
  /** Mod revision of the stored value; 0 while nothing is stored. */
  #mod = 0;
  #watch?: WatchResult;

  constructor(
    private readonly backend: MvccStore & ChangeStream,
    readonly key: string,
    private readonly codec: RecordCodec<T>,
    initial: T,
    private readonly logger: Logger,
    /** Called after every change, local or from another server. */
    private readonly onChange: (next: T, prev: T) => void = () => {},
  ) {
    this.#value = initial;
  }

  get value(): T {
    return this.#value;
  }

  /** Reads the stored value, then follows the key. */
  async start(): Promise<void> {
    const read = await this.backend.range(plainRange(this.key, ""));
    if (read.kvs[0]) this.#adopt(read.kvs[0].value, read.kvs[0].modRevision);
    this.#watch = await this.backend.watch(
      this.key,
      "",
      read.revision + 1,
      (events) => this.#onEvents(events),
    );
  }

  close(): void {
    this.#watch?.cancel();
  }

  #onEvents(events: Event[]): void {
    for (const e of events) {
      if (e.type === "put" && e.kv.modRevision > this.#mod) {
        this.#adopt(e.kv.value, e.kv.modRevision);
      }
    }
  }

  #adopt(bytes: Uint8Array, mod: number): void {
    let next: T;
    try {
      next = this.codec.decode(bytes);
    } catch (err) {
      this.logger.error("ignoring an unreadable shared record", {
        key: this.key.slice(1),
        error: String(err),
      });
      return;
    }
    const prev = this.#value;
    this.#value = next;
    this.#mod = mod;
    this.onChange(next, prev);
  }

  /**
   * Applies `change` to the newest value and stores the result; `change`
   * returns undefined when there is nothing to do, and may run more than once.
   */
  async update(change: (value: T) => T | undefined): Promise<T> {
    for (;;) {
      const base = this.#value;
      const mod = this.#mod;
      const next = change(base);
      if (next === undefined) return base;
      const bytes = this.codec.encode(next);
      const result = await this.backend.txn({
        compare: [{ key: this.key, end: "", target: "mod", result: "equal", operand: mod }],
        success: [{
          type: "put",
          key: this.key,
          value: bytes,
          lease: 0,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        }],
        failure: [{ type: "range", request: plainRange(this.key, "") }],
      });
      if (result.succeeded) {
        if (result.revision > this.#mod) this.#adopt(bytes, result.revision);
        return next;
      }
      // Another server changed it first: take its value and try again on top of it.
      const failed = result.responses[0];
      const kv = failed?.type === "range" ? failed.result.kvs[0] : undefined;
      if (kv && kv.modRevision > this.#mod) this.#adopt(kv.value, kv.modRevision);
    }
  }
}
