/**
 * A test client for etcd's Watch service: one bidirectional stream, every
 * response recorded in arrival order, and helpers that wait for what a test
 * expects (with a deadline, so a missing response fails instead of hanging).
 */
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../../lib/server/client_protos.ts";

export interface CreateOptions {
  key: string;
  rangeEnd?: string;
  startRevision?: number;
  prevKv?: boolean;
  progressNotify?: boolean;
  filters?: ("NOPUT" | "NODELETE")[];
  watchId?: number;
}

const enc = new TextEncoder();

/** The response fields the tests look at (grpc-js decodes with keepCase, longs as numbers). */
export interface WatchResponse {
  header: { revision: number };
  watch_id: number;
  created: boolean;
  canceled: boolean;
  compact_revision: number;
  cancel_reason: string;
  events: any[];
  /** performance.now() when the response arrived. */
  at: number;
}

export class WatchClient {
  readonly responses: WatchResponse[] = [];
  readonly client: grpc.Client;
  readonly call: grpc.ClientDuplexStream<any, any>;
  /** Set once the call has ended (status received). */
  readonly done: Promise<grpc.StatusObject>;
  #wake: (() => void)[] = [];
  /** When false, responses are only counted (memory measurements). */
  keep = true;
  count = 0;

  /**
   * `ownConnection` gives this client its own HTTP/2 connection instead of the
   * process-wide shared one, so a stalled stream cannot hold up others.
   * `metadata` goes with the stream (e.g. an auth `token`).
   */
  constructor(endpoint: string, ownConnection = false, metadata?: grpc.Metadata) {
    const { etcd } = loadProtos();
    const options: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": -1,
      ...(ownConnection ? { "grpc.use_local_subchannel_pool": 1 } : {}),
    };
    this.client = new etcd.Watch(endpoint, grpc.credentials.createInsecure(), options);
    this.call = (this.client as any).Watch(metadata);
    this.done = new Promise((resolve) => this.call.on("status", resolve));
    // Cancellation at close surfaces as an error event; the status carries it too.
    this.call.on("error", () => {});
    this.call.on("data", (r: any) => {
      this.count++;
      if (this.keep) {
        r.at = performance.now();
        this.responses.push(r);
      }
      const wake = this.#wake;
      this.#wake = [];
      for (const w of wake) w();
    });
  }

  create(o: CreateOptions): void {
    this.call.write({
      create_request: {
        key: enc.encode(o.key),
        range_end: enc.encode(o.rangeEnd ?? ""),
        start_revision: o.startRevision ?? 0,
        prev_kv: o.prevKv ?? false,
        progress_notify: o.progressNotify ?? false,
        filters: o.filters ?? [],
        watch_id: o.watchId ?? 0,
      },
    });
  }

  cancel(watchId: number): void {
    this.call.write({ cancel_request: { watch_id: watchId } });
  }

  requestProgress(): void {
    this.call.write({ progress_request: {} });
  }

  /** Resolves on the next response (or after `ms`). */
  #next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake.push(done);
    });
  }

  /** The first response at index ≥ `from` matching `pred`; fails after `timeoutMs`. */
  async waitFor(
    pred: (r: WatchResponse) => boolean,
    timeoutMs = 5000,
    from = 0,
    what = "a matching watch response",
  ): Promise<WatchResponse> {
    const deadline = performance.now() + timeoutMs;
    for (let i = from;;) {
      for (; i < this.responses.length; i++) if (pred(this.responses[i])) return this.responses[i];
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; got ${
            JSON.stringify(this.responses.map(brief))
          }`,
        );
      }
      await this.#next(left);
    }
  }

  /** Creates a watch and returns its `created` response (the next created one). */
  async watch(o: CreateOptions, timeoutMs = 5000): Promise<WatchResponse> {
    const from = this.responses.length;
    this.create(o);
    return await this.waitFor((r) => r.created, timeoutMs, from, `created for ${o.key}`);
  }

  /** Every event delivered so far to `watchId`, in arrival order. */
  events(watchId: number): any[] {
    return this.responses.filter((r) => r.watch_id === watchId && !r.created)
      .flatMap((r) => r.events);
  }

  /** Waits until `watchId` has received at least `n` events; returns all of them. */
  async waitEvents(watchId: number, n: number, timeoutMs = 5000): Promise<any[]> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const got = this.events(watchId);
      if (got.length >= n) return got;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Error(
          `timed out waiting for ${n} events on watch ${watchId}; got ${got.length}: ${
            JSON.stringify(this.responses.map(brief))
          }`,
        );
      }
      await this.#next(left);
    }
  }

  /** Cancels the call and closes the channel; waits for the call's final status. */
  async close(): Promise<void> {
    this.call.cancel();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.done, new Promise((r) => timer = setTimeout(r, 2000))]);
    clearTimeout(timer);
    this.client.close();
    for (const w of this.#wake) w();
  }
}

const dec = new TextDecoder();

/** A compact rendering of a response for failure messages. */
export function brief(r: WatchResponse): unknown {
  return {
    rev: r.header?.revision,
    id: r.watch_id,
    ...(r.created ? { created: true } : {}),
    ...(r.canceled ? { canceled: true, reason: r.cancel_reason, compact: r.compact_revision } : {}),
    events: r.events?.length
      ? r.events.slice(0, 20).map((e: any) =>
        `${e.type} ${dec.decode(e.kv.key)}@${e.kv.mod_revision}${
          e.prev_kv ? ` prev@${e.prev_kv.mod_revision}` : ""
        }`
      )
      : undefined,
  };
}

/** Event key/value as strings. */
export const key = (e: any): string => dec.decode(e.kv.key);
export const value = (e: any): string => dec.decode(e.kv.value);
