/**
 * Kine's own metric families (spec §9), etcd's gRPC ones, and the process metrics.
 *
 * @module
 */

import {
  type Counter,
  DEFAULT_BUCKETS,
  exponentialBuckets,
  type Gauge,
  type Histogram,
  Registry,
} from "./registry.ts";
import { registerProcessMetrics } from "./process.ts";

/** `kine_sql_time_seconds` buckets: 0.001·2^k for k = 0..13 (1 ms … 8.192 s). */
export const SQL_TIME_BUCKETS: readonly number[] = exponentialBuckets(0.001, 2, 14);

/** The labels go-grpc-prometheus (and so etcd) puts on its per-RPC metrics. */
const RPC_LABELS = ["grpc_type", "grpc_service", "grpc_method"] as const;
const RPC_CODE_LABELS = [...RPC_LABELS, "grpc_code"] as const;

/** Typed handles to kine's metrics. */
export interface KineMetrics {
  /** The registry everything below is registered in. */
  readonly registry: Registry;
  /** `kine_sql_total{name,error_code}`: SQL operations; `error_code` is `""` on success. */
  readonly sqlTotal: Counter<readonly ["name", "error_code"]>;
  /** `kine_sql_time_seconds{name,error_code}`: SQL latency in seconds. */
  readonly sqlTime: Histogram<readonly ["name", "error_code"]>;
  /** `kine_compact_total{result}`: compaction passes, `result` = `success`/`error`. */
  readonly compactTotal: Counter<readonly ["result"]>;
  /**
   * `kine_compact_batch_seconds`: how long one compaction batch held the write queue (its
   * transaction); the compactor sizes its batches to keep this under 50 ms.
   */
  readonly compactBatchSeconds: Histogram;
  /** `kine_insert_errors_total{retriable}`: failed RETURNING inserts, `true`/`false`. */
  readonly insertErrorsTotal: Counter<readonly ["retriable"]>;
  /**
   * `kine_gap_fill_total{result}`: gap outcomes per id, `filled`, `failed` (its real row
   * committed first), `held` (a fill found an id of a transaction still in flight and
   * filled nothing; looked at again later), `skipped` (given up).
   */
  readonly gapFillTotal: Counter<readonly ["result"]>;
  /**
   * `kine_watch_wakeups_total{source}`: what woke the watch poll loop — `local` (a commit of this
   * process), `notify` (another process's commit, by LISTEN/NOTIFY), `poll` (the timer).
   */
  readonly watchWakeups: Counter<readonly ["source"]>;
  /** `kine_watch_rows_read_total`: rows the watch poll loop read (over its queries). */
  readonly watchRowsRead: Counter;
  /** `kine_watch_own_rows_total`: rows of this process's commits published as its writer knew them. */
  readonly watchOwnRows: Counter;
  /**
   * `kine_watch_gap_seconds`: how long an id stood missing below rows the watch poll loop had
   * read (another transaction's insert not yet committed, or lost) until it was settled.
   */
  readonly watchGapSeconds: Histogram;
  /** `kine_role_held{role}`: 1 while this process holds the role (`lease_reaper`, `compactor`). */
  readonly roleHeld: Gauge<readonly ["role"]>;
  /** `kine_txn_batch_size`: txns committed together in one group commit. */
  readonly txnBatchSize: Histogram;
  /** `kine_event_loop_delay_seconds`: how late a 10 ms timer fires (event-loop stalls). */
  readonly eventLoopDelay: Histogram;
  /** `grpc_server_started_total`: RPCs started on the server (labels as etcd's). */
  readonly grpcStarted: Counter<typeof RPC_LABELS>;
  /** `grpc_server_handled_total`: RPCs completed, by gRPC status name (`OK`, `InvalidArgument`…). */
  readonly grpcHandled: Counter<typeof RPC_CODE_LABELS>;
  /** `grpc_server_msg_received_total`: messages received (one per unary call). */
  readonly grpcMsgReceived: Counter<typeof RPC_LABELS>;
  /** `grpc_server_msg_sent_total`: messages sent (one per successful unary call). */
  readonly grpcMsgSent: Counter<typeof RPC_LABELS>;
  /** `grpc_server_handling_seconds`: time from the start of an RPC to its status. */
  readonly grpcHandlingSeconds: Histogram<typeof RPC_LABELS>;
}

/**
 * Registers kine's metrics (and the process metrics) in `registry` (a fresh one by default) and
 * returns typed handles.
 *
 * @example
 * ```ts
 * const m = createKineMetrics();
 * const ok = m.sqlTotal.labels("get_current_sql", ""); // cache on hot paths
 * ok.inc();
 * ```
 */
export function createKineMetrics(registry: Registry = new Registry()): KineMetrics {
  const m: KineMetrics = {
    registry,
    sqlTotal: registry.counter({
      name: "kine_sql_total",
      help: "Total number of SQL operations",
      labelNames: ["name", "error_code"] as const,
    }),
    sqlTime: registry.histogram({
      name: "kine_sql_time_seconds",
      help: "Length of time per SQL operation",
      labelNames: ["name", "error_code"] as const,
      buckets: SQL_TIME_BUCKETS,
    }),
    compactTotal: registry.counter({
      name: "kine_compact_total",
      help: "Total number of compactions",
      labelNames: ["result"] as const,
    }),
    insertErrorsTotal: registry.counter({
      name: "kine_insert_errors_total",
      help: "Total number of insert errors",
      labelNames: ["retriable"] as const,
    }),
    gapFillTotal: registry.counter({
      name: "kine_gap_fill_total",
      help: "Total number of revision gaps handled by the watch poll loop",
      labelNames: ["result"] as const,
    }),
    watchWakeups: registry.counter({
      name: "kine_watch_wakeups_total",
      help: "Wake-ups of the watch poll loop by source: local commit, notify, poll timer",
      labelNames: ["source"] as const,
    }),
    watchRowsRead: registry.counter({
      name: "kine_watch_rows_read_total",
      help: "Rows read by the watch poll loop",
    }),
    watchOwnRows: registry.counter({
      name: "kine_watch_own_rows_total",
      help: "Rows of this process's own commits handed to watchers without reading them back",
    }),
    watchGapSeconds: registry.histogram({
      name: "kine_watch_gap_seconds",
      help: "Time an id stood missing below rows the watch poll loop had read, until settled",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    roleHeld: registry.gauge({
      name: "kine_role_held",
      help:
        "1 while this process holds the role (lease_reaper, compactor) among those on the store",
      labelNames: ["role"] as const,
    }),
    eventLoopDelay: registry.histogram({
      name: "kine_event_loop_delay_seconds",
      help: "How late a periodic 10 ms timer fired: time the event loop was busy elsewhere",
      // Millisecond steps up to 10 ms, where a stall starts to show in request latency.
      buckets: [0.0005, 0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    }),
    compactBatchSeconds: registry.histogram({
      name: "kine_compact_batch_seconds",
      help: "Time one compaction batch held the write queue (one transaction)",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5],
    }),
    txnBatchSize: registry.histogram({
      name: "kine_txn_batch_size",
      help: "Number of txns committed together in one database transaction",
      buckets: exponentialBuckets(1, 2, 10),
    }),
    grpcStarted: registry.counter({
      name: "grpc_server_started_total",
      help: "Total number of RPCs started on the server.",
      labelNames: RPC_LABELS,
    }),
    grpcHandled: registry.counter({
      name: "grpc_server_handled_total",
      help: "Total number of RPCs completed on the server, regardless of success or failure.",
      labelNames: RPC_CODE_LABELS,
    }),
    grpcMsgReceived: registry.counter({
      name: "grpc_server_msg_received_total",
      help: "Total number of RPC stream messages received on the server.",
      labelNames: RPC_LABELS,
    }),
    grpcMsgSent: registry.counter({
      name: "grpc_server_msg_sent_total",
      help: "Total number of gRPC stream messages sent by the server.",
      labelNames: RPC_LABELS,
    }),
    grpcHandlingSeconds: registry.histogram({
      name: "grpc_server_handling_seconds",
      help: "Histogram of response latency (seconds) of gRPC that had been application-level " +
        "handled by the server.",
      labelNames: RPC_LABELS,
      buckets: DEFAULT_BUCKETS,
    }),
  };
  registerProcessMetrics(registry);
  // Every known label set from the start, so alerts on a rate or absence work before the first event.
  for (const r of ["success", "error"]) m.compactTotal.labels(r);
  for (const r of ["true", "false"]) m.insertErrorsTotal.labels(r);
  for (const r of ["filled", "failed", "held", "skipped"]) m.gapFillTotal.labels(r);
  for (const s of ["local", "notify", "poll"]) m.watchWakeups.labels(s);
  for (const r of ["lease_reaper", "compactor"]) m.roleHeld.labels(r);
  return m;
}

const LOOP_SAMPLE_MS = 10;

/**
 * Samples event-loop delay into `metrics.eventLoopDelay`: a timer due every
 * 10 ms records how late it fired. Returns a function that stops it.
 */
export function monitorEventLoop(metrics: KineMetrics): () => void {
  let due = performance.now() + LOOP_SAMPLE_MS;
  const timer = setInterval(() => {
    const now = performance.now();
    metrics.eventLoopDelay.observe(Math.max(0, now - due) / 1000);
    due = now + LOOP_SAMPLE_MS;
  }, LOOP_SAMPLE_MS);
  return () => clearInterval(timer);
}
