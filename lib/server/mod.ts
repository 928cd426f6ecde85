/**
 * The gRPC front end: etcd's KV, Lease, Cluster and Maintenance services and
 * gRPC health on a TCP or unix listener, optionally with TLS and client
 * certificate verification.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { grpc } from "./grpc.ts";
import type { Backend } from "../backend/types.ts";
import type { LeaseManager } from "../lease/mod.ts";
import type { Logger } from "../log/mod.ts";
import { type EncodedMessage, Translator } from "../translator/mod.ts";
import { advertisedUrl, parseListenAddress } from "./listener.ts";
import { loadProtos } from "./proto.ts";
import {
  clusterService,
  healthService,
  kvService,
  leaseService,
  maintenanceService,
  type ServiceContext,
} from "./services.ts";
import { watchService } from "./watch.ts";

export { advertisedUrl, parseListenAddress } from "./listener.ts";

export interface GrpcServerOptions {
  listenAddress: string;
  serverCertFile: string;
  serverKeyFile: string;
  trustedCaFile: string;
  emulatedEtcdVersion: string;
  autoCompaction: boolean;
  /** Periodic watch progress notification interval, ms. */
  watchProgressNotifyInterval: number;
  backend: Backend;
  leases: LeaseManager;
  logger: Logger;
}

export interface GrpcServer {
  /** The advertised client URL (`http://127.0.0.1:2379`, `unixs://kine.sock`, …). */
  url: string;
  /** Stops serving: waits up to 2 s for calls in flight, then cuts them off. */
  close(): Promise<void>;
}

/** etcd's request limit (1.5 MiB) plus gRPC overhead. */
const MAX_RECV = 2 * 1024 * 1024;

const SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.max_receive_message_length": MAX_RECV,
  "grpc.max_send_message_length": 2 ** 31 - 1,
  "grpc.max_concurrent_streams": 2 ** 31 - 1,
  "grpc.keepalive_time_ms": 2 * 60 * 60 * 1000,
  "grpc.keepalive_timeout_ms": 20_000,
  "grpc.http2.min_ping_interval_without_data_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 0,
};

function credentials(o: GrpcServerOptions): grpc.ServerCredentials {
  if (!o.serverCertFile || !o.serverKeyFile) return grpc.ServerCredentials.createInsecure();
  const ca = o.trustedCaFile ? Deno.readFileSync(o.trustedCaFile) : null;
  return grpc.ServerCredentials.createSsl(
    ca ? Buffer.from(ca) : null,
    [{
      private_key: Buffer.from(Deno.readFileSync(o.serverKeyFile)),
      cert_chain: Buffer.from(Deno.readFileSync(o.serverCertFile)),
    }],
    ca !== null,
  );
}

/**
 * KV with Range answers that arrive already encoded (lib/translator/range_codec.ts).
 * The message goes to grpc-js as it is: the server reads a serialized
 * message's `byteLength` and `copy()`s it once behind the frame header, the
 * two members {@link EncodedMessage} has, so a large list's pages are copied
 * straight into the frame instead of being joined first.
 */
function withEncodedRange(kv: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const range = kv.Range;
  return {
    ...kv,
    Range: {
      ...range,
      responseSerialize: (encoded: EncodedMessage) => encoded as unknown as Buffer,
    },
  };
}

/** Binds the listener and serves until `close()`. */
export async function startGrpcServer(o: GrpcServerOptions): Promise<GrpcServer> {
  const listener = parseListenAddress(o.listenAddress);
  const tls = Boolean(o.serverCertFile && o.serverKeyFile);
  const creds = credentials(o);
  const { etcd, health } = loadProtos();
  const ctx: ServiceContext = {
    translator: new Translator(o.backend, {
      autoCompaction: o.autoCompaction,
      leaseExists: (id) => o.leases.has(id),
    }),
    backend: o.backend,
    leases: o.leases,
    logger: o.logger,
    emulatedVersion: o.emulatedEtcdVersion,
    scheme: listener.socketPath ? (tls ? "unixs" : "unix") : (tls ? "https" : "http"),
  };
  const server = new grpc.Server(SERVER_OPTIONS);
  server.addService(withEncodedRange(etcd.KV.service), kvService(ctx));
  const watch = watchService({
    backend: o.backend,
    logger: o.logger,
    progressInterval: o.watchProgressNotifyInterval,
  });
  server.addService(etcd.Watch.service, watch.handlers);
  server.addService(etcd.Lease.service, leaseService(ctx));
  server.addService(etcd.Cluster.service, clusterService(ctx));
  server.addService(etcd.Maintenance.service, maintenanceService(ctx));
  server.addService(health.Health.service, healthService());

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
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(listener.bind, creds, (err, p) => (err ? reject(err) : resolve(p)))
  );
  if (listener.socketPath) Deno.chmodSync(listener.socketPath, 0o600);

  return {
    url: advertisedUrl(listener, port, tls),
    close: () =>
      new Promise<void>((resolve) => {
        watch.closeAll();
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
