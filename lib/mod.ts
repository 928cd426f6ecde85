/**
 * kine for Deno: an etcd v3 API server that keeps Kubernetes' state in SQL.
 * Embed it the way K3s embeds kine:
 *
 * ```ts
 * import { defaultConfig, startKine } from "./lib/mod.ts";
 * const kine = await startKine({ ...defaultConfig(), listenAddress: "127.0.0.1:0" });
 * console.log(kine.url); // hand this to kube-apiserver as --etcd-servers
 * await kine.close();
 * ```
 *
 * @module
 */
import { type BackendOptions, openBackend } from "./backend/endpoint.ts";
import type { Backend } from "./backend/types.ts";
import { defaultConfig, type KineConfig, validateConfig } from "./config/mod.ts";
import { createLogger, type Logger } from "./log/mod.ts";
import {
  createKineMetrics,
  type KineMetrics,
  monitorEventLoop,
  profilingRoutes,
  serveMetrics,
  storeMetrics,
} from "./metrics/mod.ts";
import { startCompactor } from "./compact/mod.ts";
import { LeaseManager } from "./lease/mod.ts";
import { Alarms } from "./alarm/mod.ts";
import { startAuth } from "./auth/mod.ts";
import { loadServerTls, startGrpcServer } from "./server/mod.ts";
import { ConfigError } from "./config/errors.ts";

export { defaultConfig, type KineConfig, parseArgs } from "./config/mod.ts";
export { ConfigError } from "./config/errors.ts";
export { EndpointError, parseEndpoint } from "./backend/endpoint.ts";
export type { Backend } from "./backend/types.ts";
export type { Logger } from "./log/mod.ts";

/** How long `/health`, `/readyz` and a scrape's datastore reads may take, ms. */
const HEALTH_TIMEOUT_MS = 2000;

/** A running kine. */
export interface Kine {
  /** Client URL for etcd clients: `http://127.0.0.1:2379`, `unix://kine.sock`, … */
  url: string;
  /** Metrics URL, when the metrics listener runs. */
  metricsUrl?: string;
  /** True for backends that several kine processes may share (k3s leader election). */
  leaderElect: boolean;
  backend: Backend;
  /** Stops the listeners (2 s grace for calls in flight) and closes the database. */
  close(): Promise<void>;
}

/**
 * Starts kine in-process from a configuration object. Settings not given take the CLI's defaults,
 * except the metrics listener: an embedder gets one only by setting `metricsBindAddress`.
 *
 * @throws ConfigError for a setting or a file it names that cannot be used (before anything
 * listens or the datastore is opened)
 */
export async function startKine(
  config: Partial<KineConfig> = {},
  logger?: Logger,
): Promise<Kine> {
  const cfg: KineConfig = { ...defaultConfig(), metricsBindAddress: "0", ...config };
  const invalid = validateConfig(cfg);
  if (invalid) throw new ConfigError(invalid);
  const tls = loadServerTls(cfg);
  const log = logger ?? createLogger({ format: cfg.logFormat, debug: cfg.debug });
  const metrics = createKineMetrics();
  const { backend, leaderElect, description } = await openBackend(
    backendOptions(cfg, log, metrics),
  );
  await backend.start();
  // Everything started so far, stopped in reverse order on failure or close().
  const stops: (() => Promise<void>)[] = [() => backend.close()];
  const stopAll = async () => {
    while (stops.length > 0) await stops.pop()!();
  };
  try {
    const leases = new LeaseManager(backend, log, Date.now, metrics);
    await leases.start();
    stops.push(() => leases.stop());
    const auth = await startAuth({
      backend,
      leaseKeys: async (id) => (await leases.timeToLive(id))?.keys ?? [],
      authToken: cfg.authToken,
      authTokenTtl: cfg.authTokenTtl,
      clientCertAuth: cfg.clientCertAuth,
      bcryptCost: cfg.bcryptCost,
      logger: log,
    });
    stops.push(() => Promise.resolve(auth.close()));
    const alarms = new Alarms(backend, {
      quotaBytes: cfg.quotaBackendBytes,
      logger: log,
      registry: metrics.registry,
    });
    await alarms.start();
    stops.push(() => alarms.close());
    const grpc = await startGrpcServer({
      listenAddress: cfg.listenAddress,
      tls,
      emulatedEtcdVersion: cfg.emulatedEtcdVersion,
      endpoint: cfg.endpoint,
      autoCompaction: cfg.compactInterval > 0,
      watchProgressNotifyInterval: cfg.watchProgressNotifyInterval,
      keepaliveMinTime: cfg.grpcKeepaliveMinTime,
      keepaliveInterval: cfg.grpcKeepaliveInterval,
      keepaliveTimeout: cfg.grpcKeepaliveTimeout,
      maxConcurrentStreams: cfg.maxConcurrentStreams,
      maxUnreadBytes: cfg.maxUnreadBytes,
      limits: { maxTxnOps: cfg.maxTxnOps, maxRequestBytes: cfg.maxRequestBytes },
      backend,
      leases,
      auth,
      alarms,
      logger: log,
      metrics,
    });
    stops.push(() => grpc.close());
    let metricsUrl: string | undefined;
    if (cfg.metricsBindAddress !== "0") {
      const text = new TextDecoder();
      const store = storeMetrics(metrics.registry, backend, { timeoutMs: HEALTH_TIMEOUT_MS });
      const server = await serveMetrics({
        address: cfg.metricsBindAddress,
        registry: metrics.registry,
        beforeScrape: store.refresh,
        health: store.health,
        routes: cfg.metricsEnableProfiling ? profilingRoutes() : undefined,
        tls: tls && !cfg.metricsIgnoreTlsConfig
          ? { cert: text.decode(tls.cert), key: text.decode(tls.key) }
          : undefined,
        logger: log,
      });
      stops.push(() => server.close());
      metricsUrl = server.url;
      const stopMonitor = monitorEventLoop(metrics);
      stops.push(() => Promise.resolve(stopMonitor()));
    }
    stops.push(
      startCompactor(backend, {
        interval: cfg.compactInterval,
        jitter: cfg.compactIntervalJitter,
        minRetain: cfg.compactMinRetain,
        logger: log,
        metrics,
      }),
    );
    const { revision, compactRevision } = await backend.status();
    log.info("serving", {
      ...description,
      ...(description?.engine === "memory" || description?.engine === "nats"
        ? {}
        : { table: cfg.tableName }),
      revision,
      compact_revision: compactRevision,
      grpc: grpc.url,
      metrics: metricsUrl ?? "off",
    });
    log.info(`Kine available at ${grpc.url}`);
    return { url: grpc.url, metricsUrl, leaderElect, backend, close: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** The backend settings of a configuration. */
export function backendOptions(
  cfg: KineConfig,
  logger: Logger,
  metrics?: KineMetrics,
): BackendOptions {
  return {
    endpoint: cfg.endpoint,
    tls: {
      caFile: cfg.caFile,
      certFile: cfg.certFile,
      keyFile: cfg.keyFile,
      skipVerify: cfg.skipVerify,
    },
    pool: {
      maxIdle: cfg.datastoreMaxIdleConnections,
      maxOpen: cfg.datastoreMaxOpenConnections,
      maxLifetime: cfg.datastoreConnectionMaxLifetime,
      maxIdleTime: cfg.datastoreConnectionMaxIdleTime,
    },
    slowSqlThreshold: cfg.slowSqlThreshold,
    slowSqlWarningThreshold: cfg.slowSqlWarningThreshold,
    tableName: cfg.tableName,
    retryTimeout: cfg.datastoreRetryTimeout,
    identityProvider: cfg.identityProvider,
    pollBatchSize: cfg.pollBatchSize,
    pollInterval: cfg.pollInterval,
    compactBatchSize: cfg.compactBatchSize,
    compactTimeout: cfg.compactTimeout,
    logger,
    metrics,
  };
}
