/**
 * Every flag kine accepts: name, environment variable, default and help text, in `--help` order.
 * The README's flag table is generated from this list (tests/docs_test.ts keeps them equal).
 *
 * @module
 */
import type { KineConfig } from "./types.ts";

type KeysOfType<T, V> = { [K in keyof T]-?: T[K] extends V ? K : never }[keyof T];

interface FlagBase {
  /** Flag name without leading dashes, e.g. `listen-address`. */
  readonly name: string;
  /** Environment variable consulted when the flag is not given. */
  readonly env: string;
  /** Default, written exactly as a user would type it. */
  readonly default: string;
  /** One-line description for `--help`. */
  readonly usage: string;
}

/** Declaration of one command-line flag and where its value lands in {@link KineConfig}. */
export type FlagSpec =
  & FlagBase
  & (
    | { readonly kind: "string"; readonly key: KeysOfType<KineConfig, string> }
    | { readonly kind: "bool"; readonly key: KeysOfType<KineConfig, boolean> }
    | { readonly kind: "int" | "duration"; readonly key: KeysOfType<KineConfig, number> }
  );

/** Default gRPC listen address (deliberately loopback-only, unlike upstream's `0.0.0.0:2379`). */
export const DEFAULT_LISTEN_ADDRESS = "127.0.0.1:2379";
/** Listen address used when `--listen-address` is explicitly set to the empty string. */
export const EMPTY_LISTEN_ADDRESS = "unix://kine.sock";
/**
 * Default metrics address, also used when `--metrics-bind-address` is the empty string: loopback
 * only, as the gRPC listener (upstream binds `:8080`, every interface).
 */
export const DEFAULT_METRICS_BIND_ADDRESS = "127.0.0.1:8080";
/** Idle-pool size used when `--datastore-max-idle-connections` is 0. */
export const DEFAULT_MAX_IDLE_CONNECTIONS = 20;

/** Header line of the `--help` text. */
export const USAGE_HEADER =
  "kine - Minimal etcd v3 API to support custom Kubernetes storage engines";

/** Every flag kine accepts, in help order. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "listen-address",
    env: "KINE_LISTEN_ADDRESS",
    key: "listenAddress",
    kind: "string",
    default: DEFAULT_LISTEN_ADDRESS,
    usage:
      "gRPC listen address: host:port, tcp://host:port, http://host:port or unix://path (empty = unix://kine.sock)",
  },
  {
    name: "endpoint",
    env: "KINE_ENDPOINT",
    key: "endpoint",
    kind: "string",
    default: "",
    usage: "Storage endpoint (DSN) <scheme>://<rest>; empty = SQLite at ./db/state.db",
  },
  {
    name: "ca-file",
    env: "KINE_CA_FILE",
    key: "caFile",
    kind: "string",
    default: "",
    usage: "CA certificate for backend (database/NATS) TLS",
  },
  {
    name: "cert-file",
    env: "KINE_CERT_FILE",
    key: "certFile",
    kind: "string",
    default: "",
    usage: "Client certificate for backend TLS",
  },
  {
    name: "key-file",
    env: "KINE_KEY_FILE",
    key: "keyFile",
    kind: "string",
    default: "",
    usage: "Client key for backend TLS",
  },
  {
    name: "skip-verify",
    env: "KINE_SKIP_VERIFY",
    key: "skipVerify",
    kind: "bool",
    default: "false",
    usage: "Backend TLS: skip server certificate verification",
  },
  {
    name: "log-format",
    env: "KINE_LOG_FORMAT",
    key: "logFormat",
    kind: "string",
    default: "plain",
    usage: "Log format: plain or json",
  },
  {
    name: "metrics-bind-address",
    env: "KINE_METRICS_BIND_ADDRESS",
    key: "metricsBindAddress",
    kind: "string",
    default: DEFAULT_METRICS_BIND_ADDRESS,
    usage:
      "Metrics listen address (/metrics, /health, /readyz): host:port, :port for every interface; 0 disables it, empty means 127.0.0.1:8080",
  },
  {
    name: "server-cert-file",
    env: "KINE_SERVER_CERT_FILE",
    key: "serverCertFile",
    kind: "string",
    default: "",
    usage: "Listener TLS certificate (PEM); needs --server-key-file",
  },
  {
    name: "server-key-file",
    env: "KINE_SERVER_KEY_FILE",
    key: "serverKeyFile",
    kind: "string",
    default: "",
    usage: "Listener TLS private key (PEM); needs --server-cert-file",
  },
  {
    name: "trusted-ca-file",
    env: "KINE_TRUSTED_CA_FILE",
    key: "trustedCaFile",
    kind: "string",
    default: "",
    usage:
      "Clients must present a certificate signed by this CA (mutual TLS); needs --server-cert-file and --server-key-file",
  },
  {
    name: "datastore-max-idle-connections",
    env: "KINE_DATASTORE_MAX_IDLE_CONNECTIONS",
    key: "datastoreMaxIdleConnections",
    kind: "int",
    default: "20",
    usage: "Maximum idle database connections; 0 = 20, negative = no connection reuse",
  },
  {
    name: "datastore-max-open-connections",
    env: "KINE_DATASTORE_MAX_OPEN_CONNECTIONS",
    key: "datastoreMaxOpenConnections",
    kind: "int",
    default: "0",
    usage:
      "Maximum open connections of the PostgreSQL/MySQL pool; <= 0 = 10 (SQLite always uses two, one writer and one reader)",
  },
  {
    name: "datastore-connection-max-lifetime",
    env: "KINE_DATASTORE_CONNECTION_MAX_LIFETIME",
    key: "datastoreConnectionMaxLifetime",
    kind: "duration",
    default: "0s",
    usage: "Maximum lifetime of a database connection; <= 0 = unlimited",
  },
  {
    name: "datastore-connection-max-idle-time",
    env: "KINE_DATASTORE_CONNECTION_MAX_IDLE_TIME",
    key: "datastoreConnectionMaxIdleTime",
    kind: "duration",
    default: "2m",
    usage: "Maximum idle time of a database connection; <= 0 = unlimited",
  },
  {
    name: "slow-sql-threshold",
    env: "KINE_SLOW_SQL_THRESHOLD",
    key: "slowSqlThreshold",
    kind: "duration",
    default: "1s",
    usage: "Log SQL statements slower than this (info level); <= 0 disables",
  },
  {
    name: "slow-sql-warning-threshold",
    env: "KINE_SLOW_SQL_WARNING_THRESHOLD",
    key: "slowSqlWarningThreshold",
    kind: "duration",
    default: "5s",
    usage: "Slow SQL at or above this duration is logged as a warning",
  },
  {
    name: "metrics-enable-profiling",
    env: "KINE_METRICS_ENABLE_PROFILING",
    key: "metricsEnableProfiling",
    kind: "bool",
    default: "false",
    usage:
      "Serve V8 CPU profiles (/debug/pprof/profile?seconds=N) and heap snapshots (/debug/pprof/heap) on the metrics listener, for Chrome DevTools",
  },
  {
    name: "metrics-ignore-tls-config",
    env: "KINE_METRICS_IGNORE_TLS_CONFIG",
    key: "metricsIgnoreTlsConfig",
    kind: "bool",
    default: "false",
    usage: "Serve metrics over plain HTTP even when the server certificate and key are set",
  },
  {
    name: "watch-progress-notify-interval",
    env: "KINE_WATCH_PROGRESS_NOTIFY_INTERVAL",
    key: "watchProgressNotifyInterval",
    kind: "duration",
    default: "5s",
    usage: "Interval between watch progress notifications (must be at least 10ns)",
  },
  {
    name: "grpc-keepalive-min-time",
    env: "KINE_GRPC_KEEPALIVE_MIN_TIME",
    key: "grpcKeepaliveMinTime",
    kind: "duration",
    default: "5s",
    usage:
      "Minimum interval a client should wait between pings (more often: GOAWAY too_many_pings)",
  },
  {
    name: "grpc-keepalive-interval",
    env: "KINE_GRPC_KEEPALIVE_INTERVAL",
    key: "grpcKeepaliveInterval",
    kind: "duration",
    default: "2h",
    usage: "Ping a client after this long without a frame from it; 0 disables",
  },
  {
    name: "grpc-keepalive-timeout",
    env: "KINE_GRPC_KEEPALIVE_TIMEOUT",
    key: "grpcKeepaliveTimeout",
    kind: "duration",
    default: "20s",
    usage: "Close a connection whose client has not answered a keepalive ping for this long",
  },
  {
    name: "max-concurrent-streams",
    env: "KINE_MAX_CONCURRENT_STREAMS",
    key: "maxConcurrentStreams",
    kind: "int",
    default: "4294967295",
    usage: "Maximum concurrent gRPC streams per client connection",
  },
  {
    name: "max-unread-bytes",
    env: "KINE_MAX_UNREAD_BYTES",
    key: "maxUnreadBytes",
    kind: "int",
    default: "67108864",
    usage:
      "Response bytes a connection may hold unread before its slowest watch stream is cancelled",
  },
  {
    name: "emulated-etcd-version",
    env: "KINE_EMULATED_ETCD_VERSION",
    key: "emulatedEtcdVersion",
    kind: "string",
    default: "3.6.11",
    usage: "etcd version reported by the Maintenance Status RPC",
  },
  {
    name: "compact-interval",
    env: "KINE_COMPACT_INTERVAL",
    key: "compactInterval",
    kind: "duration",
    default: "0s",
    usage: "Automatic compaction interval; 0 = compaction is driven by the API server",
  },
  {
    name: "compact-interval-jitter",
    env: "KINE_COMPACT_INTERVAL_JITTER",
    key: "compactIntervalJitter",
    kind: "int",
    default: "0",
    usage: "Percentage (0-100) of random jitter applied once to the compact interval",
  },
  {
    name: "compact-timeout",
    env: "KINE_COMPACT_TIMEOUT",
    key: "compactTimeout",
    kind: "duration",
    default: "5s",
    usage: "Timeout of each compaction batch transaction",
  },
  {
    name: "compact-min-retain",
    env: "KINE_COMPACT_MIN_RETAIN",
    key: "compactMinRetain",
    kind: "int",
    default: "1000",
    usage: "Never compact the newest N revisions",
  },
  {
    name: "compact-batch-size",
    env: "KINE_COMPACT_BATCH_SIZE",
    key: "compactBatchSize",
    kind: "int",
    default: "1000",
    usage: "Revisions compacted per transaction (at least 100)",
  },
  {
    name: "poll-batch-size",
    env: "KINE_POLL_BATCH_SIZE",
    key: "pollBatchSize",
    kind: "int",
    default: "500",
    usage: "Maximum rows fetched per watch poll query",
  },
  {
    name: "poll-interval",
    env: "KINE_POLL_INTERVAL",
    key: "pollInterval",
    kind: "duration",
    default: "0s",
    usage:
      "How often the watch poll looks for other kine processes' writes; 0 = engine default (postgres 1s with LISTEN/NOTIFY, others 50ms)",
  },
  {
    name: "table-name",
    env: "KINE_TABLE_NAME",
    key: "tableName",
    kind: "string",
    default: "kine",
    usage: "Name of the revision table in SQL databases (several clusters can share one database)",
  },
  {
    name: "datastore-retry-timeout",
    env: "KINE_DATASTORE_RETRY_TIMEOUT",
    key: "datastoreRetryTimeout",
    kind: "duration",
    default: "5m",
    usage: "How long to keep trying to reach an unreachable database at start-up",
  },
  {
    name: "max-txn-ops",
    env: "KINE_MAX_TXN_OPS",
    key: "maxTxnOps",
    kind: "int",
    default: "128",
    usage: "Maximum compares, and ops per branch, of a txn; a nested txn gets what its parent " +
      "leaves (etcd's --max-txn-ops)",
  },
  {
    name: "max-request-bytes",
    env: "KINE_MAX_REQUEST_BYTES",
    key: "maxRequestBytes",
    kind: "int",
    default: "1572864",
    usage: "Maximum encoded size of a write request; gRPC accepts messages up to this plus " +
      "512 KiB (etcd's --max-request-bytes)",
  },
  {
    name: "quota-backend-bytes",
    env: "KINE_QUOTA_BACKEND_BYTES",
    key: "quotaBackendBytes",
    kind: "int",
    default: "2147483648",
    usage: "Store size at which writes are refused and the NOSPACE alarm raised, as etcd's " +
      "--quota-backend-bytes (0 = no quota)",
  },
  {
    name: "identity-provider",
    env: "KINE_IDENTITY_PROVIDER",
    key: "identityProvider",
    kind: "string",
    default: "",
    usage:
      "Database identity provider; aws = RDS IAM auth tokens as the password (postgres, mysql)",
  },
  {
    name: "auth-token",
    env: "KINE_AUTH_TOKEN",
    key: "authToken",
    kind: "string",
    default: "simple",
    usage:
      "Auth token type, as etcd: simple, or jwt,pub-key=<path>,priv-key=<path>,sign-method=<alg>[,ttl=<duration>]",
  },
  {
    name: "auth-token-ttl",
    env: "KINE_AUTH_TOKEN_TTL",
    key: "authTokenTtl",
    kind: "int",
    default: "300",
    usage: "Seconds a simple auth token stays valid after its last use",
  },
  {
    name: "client-cert-auth",
    env: "KINE_CLIENT_CERT_AUTH",
    key: "clientCertAuth",
    kind: "bool",
    default: "false",
    usage:
      "With auth enabled, a verified client certificate's common name is the user when no token is sent",
  },
  {
    name: "bcrypt-cost",
    env: "KINE_BCRYPT_COST",
    key: "bcryptCost",
    kind: "int",
    default: "10",
    usage: "bcrypt cost of stored password hashes (4-31; others fall back to 10, as in etcd)",
  },
  {
    name: "debug",
    env: "KINE_DEBUG",
    key: "debug",
    kind: "bool",
    default: "false",
    usage:
      "Log every request (method, key or range, revision, code, duration) and debug details, to stdout",
  },
  {
    name: "exit-with-parent",
    env: "KINE_EXIT_WITH_PARENT",
    key: "exitWithParent",
    kind: "bool",
    default: "false",
    usage: "Shut down when the parent process exits (set by `deno task start`; supervisors " +
      "that run kine directly leave it off)",
  },
];
