/**
 * The gRPC front end: etcd's KV, Lease, Cluster, Maintenance and Auth services and
 * gRPC health on a TCP or unix listener, optionally with TLS and client
 * certificate verification.
 *
 * @module
 */
import type { Alarms } from "../alarm/mod.ts";
import type { Auth } from "../auth/mod.ts";
import type { Backend } from "../backend/types.ts";
import type { LeaseManager } from "../lease/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type RequestLimits, Translator } from "../translator/mod.ts";
import { authService } from "./auth_service.ts";
import { GrpcServer as H2Server, type MethodDefinition, type TlsOptions } from "./h2/mod.ts";
import { advertisedUrl, parseListenAddress } from "./listener.ts";
import { deepTxnIsTooManyOps, loadProtoRoot, serviceDefinitions } from "./proto.ts";
import { byteExactAuth } from "./auth_wire.ts";
import {
  clusterService,
  healthService,
  kvService,
  leaseService,
  maintenanceService,
  type ServiceContext,
} from "./services.ts";
import { watchService } from "./watch.ts";
import { withSharedWatchEvents } from "./watch_codec.ts";
import { instrumentService } from "./rpc_metrics.ts";
import { requestTracer } from "./trace.ts";
import type { KineMetrics } from "../metrics/mod.ts";
import { Maintenance, type MemberIdentity, memberIdentity } from "../translator/maintenance.ts";

export { advertisedUrl, parseListenAddress } from "./listener.ts";
export { loadServerTls, type ServerTlsFlags } from "./tls.ts";

export interface GrpcServerOptions {
  listenAddress: string;
  /** Listener TLS, already read (`loadServerTls`); plaintext without. */
  tls?: TlsOptions;
  emulatedEtcdVersion: string;
  /** The datastore endpoint, for the cluster id Maintenance and Cluster headers carry. */
  endpoint: string;
  autoCompaction: boolean;
  /** Periodic watch progress notification interval, ms. */
  watchProgressNotifyInterval: number;
  /** etcd's keepalive policy, ms: client ping floor, server ping interval and timeout. */
  keepaliveMinTime: number;
  keepaliveInterval: number;
  keepaliveTimeout: number;
  maxConcurrentStreams: number;
  /** Unread response bytes per connection before its slowest watch stream is cancelled. */
  maxUnreadBytes: number;
  /** etcd's `--max-txn-ops` and `--max-request-bytes`. */
  limits: RequestLimits;
  backend: Backend;
  leases: LeaseManager;
  /** Users, roles and the checks they imply (lib/auth). */
  auth: Auth;
  /** Alarms and the space quota (lib/alarm). */
  alarms: Alarms;
  logger: Logger;
  /** Where the per-RPC gRPC metrics go; none recorded without. */
  metrics?: KineMetrics;
}

export interface GrpcServer {
  /** The advertised client URL (`http://127.0.0.1:2379`, `unixs://kine.sock`, …). */
  url: string;
  /** Stops serving: waits up to 2 s for calls in flight, then cuts them off. */
  close(): Promise<void>;
}

/** What etcd lets gRPC receive beyond `--max-request-bytes` (its grpcOverheadBytes). */
const GRPC_OVERHEAD_BYTES = 512 * 1024;

/**
 * KV with Range and RangeStream answers that arrive already encoded
 * (lib/translator/range_codec.ts): an EncodedMessage has `byteLength` and
 * `copy()`, which is all the server needs to copy a large list's pages
 * straight into the message frame.
 */
function withEncodedRange(
  kv: Record<string, MethodDefinition>,
): Record<string, MethodDefinition> {
  const asIs = (encoded: any) => encoded;
  return {
    ...kv,
    Range: { ...kv.Range, responseSerialize: asIs },
    RangeStream: { ...kv.RangeStream, responseSerialize: asIs },
  };
}

/**
 * A refused handshake, as etcd logs it ("rejected connection"): a client speaking plaintext to
 * the TLS port is named as such, since its error ("wrong version number") says nothing to most.
 */
function logTlsError(logger: Logger, peer: string, error: Error): void {
  const message = String(error?.message ?? error);
  const plaintext = /wrong version number|http request|unknown protocol|packet length too long/i
    .test(message);
  logger.warn(
    plaintext ? "plaintext connection to the TLS listener refused" : "rejected TLS handshake",
    {
      peer,
      error: message,
    },
  );
}

/** Binds the listener and serves until `close()`. */
export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcServer> {
  const listener = parseListenAddress(o.listenAddress);
  const tls = o.tls;
  const root = loadProtoRoot();
  const defs = serviceDefinitions(root);
  // The member id names the client URL, whose port is known once bound (before any call).
  const bound: { identity?: MemberIdentity } = {};
  const gate = (cost: number) => o.alarms.check(cost, bound.identity!.memberId);
  const ctx: ServiceContext = {
    translator: new Translator(o.backend, {
      autoCompaction: o.autoCompaction,
      leaseExists: (id) => o.leases.has(id),
      limits: o.limits,
      gate,
    }),
    backend: o.backend,
    leases: o.leases,
    gate,
    maintenance: new Maintenance(
      o.backend,
      () => bound.identity!,
      o.emulatedEtcdVersion,
      o.alarms,
    ),
    logger: o.logger,
    scheme: listener.socketPath ? (tls ? "unixs" : "unix") : (tls ? "https" : "http"),
    guard: o.auth.guard,
  };
  const server = new H2Server({
    maxReceiveMessageLength: o.limits.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    keepaliveMinTime: o.keepaliveMinTime,
    keepaliveInterval: o.keepaliveInterval,
    keepaliveTimeout: o.keepaliveTimeout,
    maxConcurrentStreams: o.maxConcurrentStreams,
    maxQueuedBytes: o.maxUnreadBytes,
    onTlsError: (peer, error) => logTlsError(o.logger, peer, error),
  });
  // Every service's handlers record etcd's per-RPC metrics (lib/server/rpc_metrics.ts) and trace.
  const trace = requestTracer(o.logger);
  const add = (service: Record<string, MethodDefinition>, handlers: Record<string, any>) =>
    server.addService(service, instrumentService(service, handlers, o.metrics, trace));
  add(deepTxnIsTooManyOps(withEncodedRange(defs["etcdserverpb.KV"])), kvService(ctx));
  const watch = watchService({
    backend: o.backend,
    logger: o.logger,
    progressInterval: o.watchProgressNotifyInterval,
    guard: o.auth.guard,
  });
  add(withSharedWatchEvents(defs["etcdserverpb.Watch"], root), watch.handlers);
  add(defs["etcdserverpb.Lease"], leaseService(ctx));
  add(defs["etcdserverpb.Cluster"], clusterService(ctx));
  add(defs["etcdserverpb.Maintenance"], maintenanceService(ctx));
  add(byteExactAuth(defs["etcdserverpb.Auth"], root), authService(o.auth.api, o.logger));
  add(defs["grpc.health.v1.Health"], healthService());

  if (listener.socketPath) {
    try {
      Deno.removeSync(listener.socketPath);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) {
        o.logger.warn("failed to remove stale socket", {
          path: listener.socketPath,
          error: String(err),
        });
      }
    }
  }
  const port = await server.listen(
    listener.socketPath
      ? { path: listener.socketPath }
      : { host: listener.host, port: listener.port },
    tls,
  );
  if (listener.socketPath) Deno.chmodSync(listener.socketPath, 0o600);
  const url = advertisedUrl(listener, port, Boolean(tls));
  bound.identity = memberIdentity(o.endpoint, url);

  return {
    url,
    close: () => {
      watch.closeAll();
      return server.shutdown(2000);
    },
  };
}
