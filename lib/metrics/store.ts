/**
 * What etcd reports about its store, answered from kine's datastore: the health endpoints'
 * round trip and etcd's server and mvcc gauges, read at scrape time.
 *
 * @module
 */
import { FROM_KEY, type Maintenance, type MvccStore, plainRange } from "../backend/types.ts";
import type { Registry } from "./registry.ts";

/** The answer of a health round trip; `reason` is empty when healthy. */
export interface Health {
  healthy: boolean;
  reason: string;
}

/** Options of {@link storeMetrics}. */
export interface StoreMetricsOptions {
  /** How long a round trip may take before it counts as failed, ms. */
  timeoutMs: number;
  /** Counting every live key scans the table: at most one count per this many ms. */
  keysEveryMs?: number;
}

/** The store's gauges and health check, sharing one datastore connection. */
export interface StoreMetrics {
  /** Reads the store's sizes and revisions into the gauges (before a scrape). */
  refresh(): Promise<void>;
  /** A read of one key through the backend, bounded by the timeout. */
  health(): Promise<Health>;
}

/** `promise`, or a rejection naming `what` once `ms` have passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/**
 * Registers `etcd_server_has_leader` (1 while the datastore answers: kine has no election, the
 * database is its leader), `etcd_mvcc_db_total_size_in_bytes`,
 * `etcd_mvcc_db_total_size_in_use_in_bytes`, `etcd_debugging_mvcc_keys_total`,
 * `etcd_debugging_mvcc_current_revision` and `etcd_debugging_mvcc_compact_revision`.
 */
export function storeMetrics(
  registry: Registry,
  backend: MvccStore & Maintenance,
  o: StoreMetricsOptions,
): StoreMetrics {
  const gauge = (name: string, help: string) => registry.gauge({ name, help });
  const hasLeader = gauge(
    "etcd_server_has_leader",
    "Whether or not a leader exists. 1 is existence, 0 is not (kine: the datastore answers).",
  );
  const size = gauge(
    "etcd_mvcc_db_total_size_in_bytes",
    "Total size of the underlying database physically allocated in bytes.",
  );
  const inUse = gauge(
    "etcd_mvcc_db_total_size_in_use_in_bytes",
    "Total size of the underlying database logically in use in bytes.",
  );
  const keys = gauge("etcd_debugging_mvcc_keys_total", "Total number of keys.");
  const current = gauge("etcd_debugging_mvcc_current_revision", "The current revision of store.");
  const compact = gauge(
    "etcd_debugging_mvcc_compact_revision",
    "The revision of the last compaction in store.",
  );
  const keysEveryMs = o.keysEveryMs ?? 10_000;
  let keysCountedAt = -Infinity;
  const countKeys = async () => {
    const all = { ...plainRange(FROM_KEY, FROM_KEY), countOnly: true };
    keys.set((await backend.range(all)).count);
    keysCountedAt = performance.now();
  };
  return {
    async refresh() {
      try {
        const status = await within(backend.status(), o.timeoutMs, "datastore status");
        size.set(status.dbSize);
        inUse.set(status.dbSizeInUse);
        current.set(status.revision);
        compact.set(status.compactRevision);
        if (performance.now() - keysCountedAt >= keysEveryMs) {
          await within(countKeys(), o.timeoutMs, "key count");
        }
        hasLeader.set(1);
      } catch {
        hasLeader.set(0);
      }
    },
    async health() {
      try {
        await within(backend.range(plainRange("health", "")), o.timeoutMs, "datastore read");
        hasLeader.set(1);
        return { healthy: true, reason: "" };
      } catch (err) {
        hasLeader.set(0);
        return { healthy: false, reason: String((err as Error)?.message ?? err) };
      }
    },
  };
}
