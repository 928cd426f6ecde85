/** A small etcd v3 client over grpc-js for `kine migrate --from etcd://…`: KV, Lease, Auth. */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
import * as loader from "@grpc/proto-loader";
import { LOADER_OPTIONS } from "../server/proto.ts";
import type { KeyValue } from "../backend/types.ts";
import type { Side } from "./flags.ts";
import { keyFromBytes, keyToBytes } from "../backend/keys.ts";
import { FIRST_KEY } from "./digest.ts";

/** A unary call on one of the stubs. */
export type Call = (method: string, request: Record<string, unknown>) => Promise<any>;

export interface EtcdConnection {
  kv: Call;
  lease: Call;
  auth: Call;
  /** True when etcd refuses a call that carries no token: auth is enabled. */
  authEnabled(): Promise<boolean>;
  /**
   * Watches every key from `startRevision` with previous values; `onResponse`
   * gets each WatchResponse, `onError` a stream failure. Returns a cancel.
   */
  watch(
    startRevision: number,
    onResponse: (r: any) => void,
    onError: (err: Error) => void,
  ): () => void;
  close(): void;
}

/**
 * kine's lease ID for an etcd lease ID (a decimal int64): the same number
 * where it is an exact JavaScript integer (below 2^53), else its low 52 bits
 * (kept at or above 2^32, where kine's own IDs are): one mapping for the
 * records and the keys, so every key stays attached to its lease.
 */
export function leaseId(id: string): number {
  const big = BigInt(id);
  if (big <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(big);
  const low = Number(big & ((1n << 52n) - 1n));
  return low < 2 ** 32 ? low + 2 ** 32 : low;
}

/** `etcd://host:port` or `etcds://host:port` (TLS). */
export function isEtcdEndpoint(endpoint: string): boolean {
  return /^etcds?:\/\//.test(endpoint);
}

/** Connects, and with a user signs in: every call then carries the token. */
export async function connectEtcd(side: Side): Promise<EtcdConnection> {
  const m = /^(etcds?):\/\/([^/?]+)\/?$/.exec(side.endpoint);
  if (!m) throw new Error(`invalid etcd endpoint ${side.endpoint}: use etcd://host:port`);
  const [, scheme, target] = m;
  const read = (f: string) => (f ? Buffer.from(Deno.readFileSync(f)) : null);
  const credentials = scheme === "etcds"
    ? grpc.credentials.createSsl(
      read(side.tls.caFile),
      read(side.tls.keyFile),
      read(side.tls.certFile),
      side.tls.skipVerify ? { checkServerIdentity: () => undefined } : undefined,
    )
    : grpc.credentials.createInsecure();
  // int64 as strings: etcd's lease IDs use all 63 bits.
  const definition = loader.loadSync(
    new URL("../../proto/etcd.proto", import.meta.url).pathname,
    { ...LOADER_OPTIONS, longs: String },
  );
  const etcd = (grpc.loadPackageDefinition(definition) as any).etcdserverpb;
  const opts = { "grpc.max_receive_message_length": 256 * 1024 * 1024 };
  const stubs = {
    kv: new etcd.KV(target, credentials, opts),
    lease: new etcd.Lease(target, credentials, opts),
    auth: new etcd.Auth(target, credentials, opts),
    watch: new etcd.Watch(target, credentials, opts),
  };
  const metadata = new grpc.Metadata();
  const call = (stub: any, meta = metadata): Call => (method, request) =>
    new Promise((resolve, reject) =>
      stub[method](
        request,
        meta,
        { deadline: Date.now() + 30_000 },
        (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)),
      )
    );
  const close = () => Object.values(stubs).forEach((s) => s.close());
  try {
    if (side.user) {
      const r = await call(stubs.auth)("Authenticate", {
        name: side.user,
        password: side.password,
      });
      metadata.set("token", r.token);
    }
  } catch (err) {
    close();
    throw err;
  }
  const watch: EtcdConnection["watch"] = (startRevision, onResponse, onError) => {
    const stream = stubs.watch.Watch(metadata);
    stream.on("data", onResponse);
    stream.on("error", (err: Error) => {
      if ((err as { code?: number }).code !== grpc.status.CANCELLED) onError(err);
    });
    stream.write({
      create_request: {
        key: keyToBytes(FIRST_KEY),
        range_end: keyToBytes("\0"),
        start_revision: startRevision,
        prev_kv: true,
      },
    });
    return () => stream.cancel();
  };
  // etcd 3.4 has no AuthStatus: a user list without a token is refused exactly when auth is on.
  const authEnabled = () =>
    call(stubs.auth, new grpc.Metadata())("UserList", {}).then(() => false, () => true);
  return {
    kv: call(stubs.kv),
    lease: call(stubs.lease),
    auth: call(stubs.auth),
    authEnabled,
    watch,
    close,
  };
}

/** One page of etcd's live keys from `start` at `revision` (0 = current), as kine's KeyValues. */
export async function etcdPage(
  etcd: EtcdConnection,
  start: string,
  revision: number,
  limit: number,
  keysOnly = false,
): Promise<{ kvs: KeyValue[]; more: boolean; revision: number }> {
  const r = await etcd.kv("Range", {
    key: keyToBytes(start),
    range_end: keyToBytes("\0"),
    revision,
    limit,
    keys_only: keysOnly,
  });
  const kvs = r.kvs.map((kv: any): KeyValue => ({
    key: keyFromBytes(kv.key),
    value: kv.value,
    createRevision: Number(kv.create_revision),
    modRevision: Number(kv.mod_revision),
    version: Number(kv.version),
    lease: leaseId(kv.lease),
  }));
  return { kvs, more: r.more, revision: Number(r.header.revision) };
}
