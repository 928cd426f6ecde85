/**
 * A small etcd client for the bench: KV, Lease and Health calls with a
 * deadline, and Watch streams. Each {@link Conn} is its own TCP connection
 * (grpc-js would otherwise share one subchannel between equal channels).
 */
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../lib/server/proto.ts";

const protos = loadProtos();
const insecure = grpc.credentials.createInsecure();
const OPTIONS: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": -1,
  "grpc.max_send_message_length": -1,
  // HTTP/2 windows of 64 KiB (the default) stall every stream on a connection
  // behind a large list response: let 16 MiB be in flight per stream and connection.
  "grpc.enable_retries": 0,
  "grpc.enable_channelz": 0,
  "grpc-node.flow_control_window": 16 * 1024 * 1024,
};

/** Default deadline of a unary call, ms. */
export const DEADLINE_MS = 30_000;

type Msg = Record<string, any>;

/** One connection to an etcd-compatible server. */
export class Conn {
  readonly #kv: any;
  readonly #lease: any;
  readonly #health: any;
  readonly #watch: any;

  constructor(readonly target: string) {
    const channel = new grpc.Channel(target, insecure, OPTIONS);
    const opts = { ...OPTIONS, channelOverride: channel };
    this.#kv = new protos.etcd.KV(target, insecure, opts);
    this.#lease = new protos.etcd.Lease(target, insecure, opts);
    this.#health = new protos.health.Health(target, insecure, opts);
    this.#watch = new protos.etcd.Watch(target, insecure, opts);
  }

  /** KV.Range. */
  range(r: Msg, deadlineMs?: number): Promise<Msg> {
    return call(this.#kv, "Range", r, deadlineMs);
  }
  /** KV.Put. */
  put(r: Msg): Promise<Msg> {
    return call(this.#kv, "Put", r);
  }
  /** KV.Txn. */
  txn(r: Msg): Promise<Msg> {
    return call(this.#kv, "Txn", r);
  }
  /** Grants lease `id` (etcd's own IDs exceed 2^53, which int64-as-number cannot carry). */
  leaseGrant(ttl: number, id: number): Promise<Msg> {
    return call(this.#lease, "LeaseGrant", { TTL: ttl, ID: id });
  }
  /** grpc.health.v1 Health.Check. */
  health(deadlineMs?: number): Promise<Msg> {
    return call(this.#health, "Check", {}, deadlineMs);
  }
  /** A bidirectional Watch stream. */
  watchStream(): grpc.ClientDuplexStream<Msg, Msg> {
    return this.#watch.Watch();
  }
  /** Closes the connection. */
  close(): void {
    for (const c of [this.#kv, this.#lease, this.#health, this.#watch]) c.close();
  }
}

function call(stub: any, method: string, request: Msg, deadlineMs = DEADLINE_MS): Promise<Msg> {
  return new Promise((resolve, reject) => {
    stub[method](
      request,
      { deadline: Date.now() + deadlineMs },
      (err: Error | null, res: Msg) => (err ? reject(err) : resolve(res)),
    );
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes of a string. */
export const bytes = (s: string): Uint8Array => enc.encode(s);
/** String of bytes. */
export const text = (u: Uint8Array | undefined): string => (u ? dec.decode(u) : "");

/** The range end that makes `prefix` a prefix range. */
export function prefixEnd(prefix: string): Uint8Array {
  const b = bytes(prefix);
  b[b.length - 1]++;
  return b;
}

/** A value of `size` bytes. */
export function value(size: number, fill = 0x61): Uint8Array {
  return new Uint8Array(size).fill(fill);
}

/** A short description of an error (gRPC code name and details). */
export function errorText(err: unknown): string {
  const e = err as grpc.ServiceError;
  if (typeof e?.code === "number") {
    return `${grpc.status[e.code] ?? e.code}: ${e.details ?? e.message}`;
  }
  return String((err as Error)?.message ?? err);
}
