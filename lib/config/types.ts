/** Durations are milliseconds throughout the configuration. */
export type Millis = number;

/** Everything the daemon needs to start; produced by the CLI parser or built by an embedder. */
export interface KineConfig {
  /** gRPC listen address: `h:p`, `tcp://h:p`, `http://h:p` or `unix://path`. */
  listenAddress: string;
  /** Storage DSN, `<scheme>://<rest>`; empty = SQLite at `./db/state.db`. */
  endpoint: string;
  /** Backend (database) TLS. */
  caFile: string;
  certFile: string;
  keyFile: string;
  skipVerify: boolean;
  logFormat: "plain" | "json";
  /** Prometheus listener; `"0"` disables it. */
  metricsBindAddress: string;
  serverCertFile: string;
  serverKeyFile: string;
  trustedCaFile: string;
  datastoreMaxIdleConnections: number;
  datastoreMaxOpenConnections: number;
  datastoreConnectionMaxLifetime: Millis;
  datastoreConnectionMaxIdleTime: Millis;
  slowSqlThreshold: Millis;
  slowSqlWarningThreshold: Millis;
  metricsEnableProfiling: boolean;
  metricsIgnoreTlsConfig: boolean;
  watchProgressNotifyInterval: Millis;
  /** etcd's server keepalive policy (`--grpc-keepalive-*`). */
  grpcKeepaliveMinTime: Millis;
  grpcKeepaliveInterval: Millis;
  grpcKeepaliveTimeout: Millis;
  /** Per connection, as etcd's `--max-concurrent-streams`. */
  maxConcurrentStreams: number;
  /** Unread response bytes per connection before its slowest watch stream is cancelled. */
  maxUnreadBytes: number;
  emulatedEtcdVersion: string;
  compactInterval: Millis;
  /** Percent, 0..100. */
  compactIntervalJitter: number;
  compactTimeout: Millis;
  compactMinRetain: number;
  compactBatchSize: number;
  pollBatchSize: number;
  /**
   * How often the watch poll looks for other processes' writes; 0 = the
   * engine's default (1 s on PostgreSQL, which LISTEN/NOTIFY wakes; 50 ms elsewhere).
   */
  pollInterval: Millis;
  /** Revision table name (SQL engines). */
  tableName: string;
  /** How long start-up keeps retrying an unreachable database. */
  datastoreRetryTimeout: Millis;
  /** etcd's `--max-txn-ops`: compares, and ops per branch of a txn (nested ones share it). */
  maxTxnOps: number;
  /** etcd's `--max-request-bytes`: largest encoded write request. */
  maxRequestBytes: number;
  /** etcd's `--quota-backend-bytes`: store size at which NOSPACE is raised; 0 = no quota. */
  quotaBackendBytes: number;
  identityProvider: string;
  /** etcd's `--auth-token`: `simple`, or `jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]`. */
  authToken: string;
  /** Seconds a simple token stays valid after its last use. */
  authTokenTtl: number;
  /** Authenticate a client certificate's common name as a user (needs --trusted-ca-file). */
  clientCertAuth: boolean;
  bcryptCost: number;
  debug: boolean;
  /**
   * Shut down when the parent process exits (the `start` task sets it, so
   * killing `deno task` does not leave the daemon orphaned). CLI only.
   */
  exitWithParent: boolean;
}
