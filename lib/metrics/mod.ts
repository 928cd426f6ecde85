/**
 * Dependency-free Prometheus metrics for kine: a registry with counters, gauges and histograms
 * (text exposition format 0.0.4), kine's pre-declared metric families, and the `/metrics` server.
 *
 * @module
 */

export {
  type Collector,
  CONTENT_TYPE,
  Counter,
  CounterChild,
  DEFAULT_BUCKETS,
  escapeHelp,
  escapeLabelValue,
  exponentialBuckets,
  formatValue,
  Gauge,
  GaugeChild,
  type GaugeOptions,
  Histogram,
  HistogramChild,
  type HistogramOptions,
  type LabelValues,
  type MetricOptions,
  Registry,
} from "./registry.ts";
export { createKineMetrics, type KineMetrics, monitorEventLoop, SQL_TIME_BUCKETS } from "./kine.ts";
export { profilingRoutes } from "./profiling.ts";
export { type Health, type StoreMetrics, storeMetrics, type StoreMetricsOptions } from "./store.ts";
export {
  type MetricsServer,
  parseListenAddress,
  serveMetrics,
  type ServeMetricsOptions,
} from "./server.ts";
