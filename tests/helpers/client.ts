/** A promise-based etcd gRPC client over the project's own protos, for tests and the bench. */
import * as grpc from "@grpc/grpc-js";
import { loadProtos } from "../../lib/server/client_protos.ts";

/** A unary call; `metadata` carries e.g. an auth `token`. */
type Unary = (request: Record<string, unknown>, metadata?: grpc.Metadata) => Promise<any>;

/** Promisified stubs of KV, Lease, Cluster, Maintenance, Auth and Health. */
export interface EtcdClient {
  kv: Record<"range" | "put" | "deleteRange" | "txn" | "compact", Unary>;
  lease: Record<"leaseGrant" | "leaseRevoke" | "leaseTimeToLive" | "leaseLeases", Unary>;
  cluster: Record<"memberList", Unary>;
  maintenance: Record<"status" | "defragment" | "alarm" | "hash" | "hashKV", Unary>;
  health: Record<"check", Unary>;
  auth: Record<(typeof AUTH_METHODS)[number], Unary>;
  raw: { kv: grpc.Client; lease: grpc.Client; maintenance: grpc.Client };
  close(): void;
}

const AUTH_METHODS = [
  "authEnable",
  "authDisable",
  "authStatus",
  "authenticate",
  "userAdd",
  "userGet",
  "userList",
  "userDelete",
  "userChangePassword",
  "userGrantRole",
  "userRevokeRole",
  "roleAdd",
  "roleGet",
  "roleList",
  "roleDelete",
  "roleGrantPermission",
  "roleRevokePermission",
] as const;

function promisify(stub: any, methods: string[]): Record<string, Unary> {
  const out: Record<string, Unary> = {};
  for (const m of methods) {
    const rpc = m[0].toUpperCase() + m.slice(1);
    out[m] = (request, metadata = new grpc.Metadata()) =>
      new Promise((resolve, reject) =>
        stub[rpc](
          request,
          metadata,
          (err: unknown, res: unknown) => (err ? reject(err) : resolve(res)),
        )
      );
  }
  return out;
}

/** Connects to `target` (grpc-js syntax: `127.0.0.1:2379`, `unix:/path`). */
export function connect(
  target: string,
  credentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): EtcdClient {
  const { etcd, health } = loadProtos();
  const opts = { "grpc.max_send_message_length": 64 * 1024 * 1024, ...options };
  const kv = new etcd.KV(target, credentials, opts);
  const lease = new etcd.Lease(target, credentials, opts);
  const cluster = new etcd.Cluster(target, credentials, opts);
  const maintenance = new etcd.Maintenance(target, credentials, opts);
  const h = new health.Health(target, credentials, opts);
  const auth = new etcd.Auth(target, credentials, opts);
  return {
    kv: promisify(kv, ["range", "put", "deleteRange", "txn", "compact"]) as EtcdClient["kv"],
    lease: promisify(lease, [
      "leaseGrant",
      "leaseRevoke",
      "leaseTimeToLive",
      "leaseLeases",
    ]) as EtcdClient["lease"],
    cluster: promisify(cluster, ["memberList"]) as EtcdClient["cluster"],
    maintenance: promisify(maintenance, [
      "status",
      "defragment",
      "alarm",
      "hash",
      "hashKV",
    ]) as EtcdClient["maintenance"],
    health: promisify(h, ["check"]) as EtcdClient["health"],
    auth: promisify(auth, [...AUTH_METHODS]) as EtcdClient["auth"],
    raw: { kv, lease, maintenance },
    close() {
      for (const c of [kv, lease, cluster, maintenance, h, auth]) c.close();
    },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes of a string, for request fields. */
export const b = (s: string): Uint8Array => enc.encode(s);
/** String of bytes, for response fields. */
export const s = (u: Uint8Array | undefined): string => (u ? dec.decode(u) : "");
