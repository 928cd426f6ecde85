import { COMPACT_KEY, compactKeyRow, presentKv } from "./compact_key.ts";
import { Compactor, type CompactorOptions } from "./compactor.ts";
import { CountCache } from "./count_cache.ts";
import { GapHeld, type LogStore, rowToKv } from "./log.ts";
import { IndexedReads, RowGone } from "./indexed_reads.ts";
import { ValueCache } from "./value_cache.ts";
import { withIndexedBulk } from "./indexed_bulk.ts";
import { Snapshots, toRecord } from "./snapshot.ts";
import { compacted, futureRevision } from "../errors.ts";
import { hashKeySpace } from "../hash.ts";
import { ReadIndex } from "../read_index.ts";
import { readTxn } from "./read_txn.ts";
import { checkTxn, txnKeys } from "./txn.ts";
import { WatchHub } from "./watch_hub.ts";
import { WritePipeline } from "./write_pipeline.ts";
import type {
  Backend,
  EventSink,
  KvHash,
  LeasedKeys,
  LeaseRecord,
  LogRecord,
  RangeRequest,
  RangeResult,
  Status,
  Txn,
  TxnResult,
  WatchResult,
} from "../types.ts";

/**
 * The ring of recent values Ranges take from memory (`value_cache.ts`): a
 * list of 10,000 values of 512 B, or 3,000 of 2 KiB. It takes this much RSS
 * once full (plus a map slot per value), which keeps kine's footprint after a
 * load of 100,000 keys under etcd's (README, Footprint).
 */
const VALUE_CACHE_BYTES = 6 * 1024 * 1024;

const HEALTH_KEY = "/registry/health";
const HEALTH_VALUE = new TextEncoder().encode('{"health":"true"}');

export interface LogBackendOptions extends CompactorOptions {
  /** Rows fetched per poll query. */
  pollBatchSize: number;
  /** How often the poll loop looks for other processes' writes (ms); 0 = the store's default. */
  pollInterval?: number;
}

/**
 * etcd's MVCC on an append-only revision log held by a {@link LogStore},
 * assembled from three parts: the {@link WritePipeline} (group commit), the
 * {@link WatchHub} (poll loop and watch fan-out) and the {@link Compactor}.
 * Ranges are answered from the process's key index ({@link IndexedReads}),
 * which follows the hub's published rows; only their values are read from
 * the store.
 */
export class LogBackend implements Backend {
  #current = 0;
  readonly #counts = new CountCache();
  readonly #writes: WritePipeline;
  readonly #hub: WatchHub;
  readonly #compactor: Compactor;
  readonly #snapshots: Snapshots;
  readonly #reads: IndexedReads;
  readonly #readIndex = new ReadIndex(
    () => this.latestRevision(),
    (revision) => this.waitForSyncTo(revision),
  );

  constructor(
    private readonly store: LogStore,
    private readonly options: LogBackendOptions,
  ) {
    // Bulk loads' rows computed from the key index (`indexed_bulk.ts`).
    const writer = withIndexedBulk(store, {
      newest: (key) => this.#reads.newest(key),
      cachedValue: (id) => this.#reads.cachedValue(id),
      position: () => this.#hub.polled,
      acknowledged: () => this.#current,
      waitFor: (revision) => this.waitForSyncTo(revision),
      committed: (rows) => {
        this.#hub.committed(rows);
        this.#hub.wake("local");
      },
    });
    this.#writes = new WritePipeline(writer, options, (revision, written) => {
      this.#advance(revision);
      this.#hub.committed(written);
      this.#hub.wake("local");
      store.notifier?.announce(revision);
    });
    // Off the write queue where a pool allows (SQLite's fill waits for the file's lock).
    const fill = async (ids: number[]) => {
      try {
        return store.parallelWrites
          ? await store.write(async (tx) => await tx.fill(ids))
          : await this.#writes.write(async (tx) => await tx.fill(ids));
      } catch (err) {
        if (err instanceof GapHeld) return null;
        throw err;
      }
    };
    this.#hub = new WatchHub(
      { reader: store.reader, fill },
      {
        ...options,
        fillRetryDelayMs: store.fillRetryDelayMs,
        pollIntervalMs: options.pollInterval || store.pollIntervalMs,
        busyPollIntervalMs: store.busyPollIntervalMs,
        announced: store.notifier !== undefined,
      },
      (revision) => this.#advance(revision),
      () => this.#current,
    );
    this.#reads = new IndexedReads(
      store.reader,
      store.valuesInMemory ? undefined : new ValueCache(VALUE_CACHE_BYTES),
    );
    this.#hub.onPublish((events) => this.#reads.apply(events));
    this.#snapshots = new Snapshots(store.reader, this.#writes, this.#hub, options.pollBatchSize);
    this.#compactor = new Compactor(store, this.#writes, this.#hub, options, this.#snapshots);
  }

  get #reader() {
    return this.store.reader;
  }

  async start(): Promise<void> {
    await this.#writes.write(async (tx) => {
      const rows = await tx.rowsNamed(COMPACT_KEY);
      if (rows.length === 0) {
        await tx.append(compactKeyRow());
      } else if (rows.length > 1) {
        // Legacy stores appended a row per compaction: keep the highest compact revision.
        const keep = rows.reduce((a, b) => b.prevRevision > a.prevRevision ? b : a);
        for (const r of rows) if (r !== keep) await tx.deleteRow(r.id);
        this.options.logger.info("removed duplicate compact_rev_key rows", {
          removed: rows.length - 1,
        });
      }
      const health = await tx.latest(HEALTH_KEY);
      if (!health || health.deleted) {
        await tx.append({
          name: HEALTH_KEY,
          created: true,
          deleted: false,
          createRevision: 0,
          prevRevision: health?.id ?? 0,
          lease: 0,
          value: HEALTH_VALUE,
          version: 1,
        });
      }
    });
    const { current } = await this.#revisions();
    const started = performance.now();
    await this.#reads.rebuild(current);
    this.options.logger.info("key index built", {
      ...this.#reads.stats,
      duration: `${Math.round(performance.now() - started)}ms`,
    });
    this.#hub.start(current);
    // A notification this process has published already (its own, echoed) costs no poll.
    await this.store.notifier?.listen((revision) => this.#hub.notified(revision));
  }

  async close(): Promise<void> {
    await this.#writes.drain();
    await this.#hub.close();
    await this.store.close();
  }

  syncedRevision(): number {
    return this.#hub.polled;
  }

  waitForSyncTo(revision: number): Promise<void> {
    return this.#hub.waitForSyncTo(revision);
  }

  watch(key: string, end: string, startRevision: number, sink: EventSink): Promise<WatchResult> {
    return this.#hub.watch(key, end, startRevision, sink);
  }

  currentRevision(): number {
    return this.#current;
  }

  #advance(revision: number): void {
    if (revision > this.#current) this.#current = revision;
  }

  /**
   * A Range from the key index. A linearizable one first waits until the
   * index has applied every write committed to the store (ReadIndex); a
   * serializable one every write this process acknowledged; one at a
   * revision the index has not reached waits for it.
   */
  async range(request: RangeRequest): Promise<RangeResult> {
    for (let attempt = 1;; attempt++) {
      await this.#readPoint(request);
      // From here to the index lookup nothing awaits: the header is the index's position.
      const header = this.#hub.polled;
      const revision = request.revision > 0 ? request.revision : header;
      try {
        const result = await this.#reads.range(
          request,
          revision,
          header,
          this.#counts.take(request),
        );
        this.#counts.remember(request, result);
        return result;
      } catch (err) {
        if (!(err instanceof RowGone)) throw err;
        // Compaction overtook the read: learn how far, then read again (or report it).
        await this.#revisions();
        if (attempt >= 3) throw compacted();
      }
    }
  }

  /** Waits until the index can answer `r` (see {@link range}); throws etcd's revision errors. */
  async #readPoint(r: RangeRequest): Promise<void> {
    if (r.serializable) await this.waitForSyncTo(this.#current);
    else await this.linearize();
    if (r.revision <= 0) return;
    if (r.revision > this.#hub.polled) {
      if (r.revision > (await this.#revisions()).current) throw futureRevision();
      await this.waitForSyncTo(r.revision);
    }
    if (r.revision < this.#reads.compact) throw compacted();
  }

  /** The store's revisions, read now; a newer compact revision trims the index. */
  async #revisions(): Promise<{ current: number; compact: number }> {
    const revisions = await this.#reader.revisions();
    this.#advance(revisions.current);
    this.#reads.compacted(revisions.compact);
    return revisions;
  }

  txn(txn: Txn): Promise<TxnResult> {
    checkTxn(txn);
    if (!txnKeys(txn).writes) return this.#readTxn(txn);
    return this.#writes.txn(txn);
  }

  /**
   * A txn that writes nothing: linearized once, then its compares and ranges
   * read from the key index at that revision ({@link readTxn}), without a
   * store transaction or a place in the write queue.
   */
  async #readTxn(txn: Txn): Promise<TxnResult> {
    await this.linearize();
    const revision = this.#hub.polled;
    return await readTxn(txn, revision, (r) => this.range({ ...r, serializable: true }));
  }

  async leasedKeys(): Promise<LeasedKeys> {
    const { current } = await this.#reader.revisions();
    const rows = await this.#reader.leased(current);
    const keys = rows.map((row) => {
      const kv = presentKv(rowToKv(row, true));
      return { key: kv.key, lease: kv.lease, modRevision: kv.modRevision };
    });
    return { revision: current, keys };
  }

  async latestRevision(): Promise<number> {
    return (await this.#revisions()).current;
  }

  linearize(): Promise<number> {
    return this.#readIndex.barrier();
  }

  leaseRecords(id?: number): Promise<LeaseRecord[]> {
    return this.store.leaseRecords(id);
  }

  createLease(lease: LeaseRecord): Promise<boolean> {
    return this.#writes.write(async (tx) => {
      if (await tx.lease(lease.id)) return false;
      await tx.saveLease(lease);
      return true;
    });
  }

  renewLease(id: number, now: number): Promise<LeaseRecord | undefined> {
    return this.#writes.write(async (tx) => {
      const lease = await tx.lease(id);
      if (!lease || lease.expiresAt <= now) return undefined;
      const renewed = { ...lease, expiresAt: now + lease.ttl * 1000 };
      await tx.saveLease(renewed);
      return renewed;
    });
  }

  deleteLease(id: number, expiredBy?: number): Promise<boolean> {
    // Expiry (the reaper) is housekeeping; a client's revoke is not.
    return this.#writes.write(async (tx) => {
      const lease = await tx.lease(id);
      if (!lease || (expiredBy !== undefined && lease.expiresAt > expiredBy)) return false;
      await tx.deleteLease(id);
      return true;
    }, { background: expiredBy !== undefined });
  }

  claimRole(role: string, holder: string, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    return this.#writes.write(
      async (tx) => await tx.claimRole(role, holder, now, now + ttlMs),
      { background: true },
    );
  }

  async status(): Promise<Status> {
    const { current, compact } = await this.#revisions();
    const dbSizeInUse = await this.store.size();
    const dbSize = await this.store.allocatedSize?.() ?? dbSizeInUse;
    return { revision: current, compactRevision: compact, dbSize, dbSizeInUse };
  }

  hashKV(revision: number): Promise<KvHash> {
    return hashKeySpace(this, revision);
  }

  async defragment(): Promise<void> {
    await this.store.defragment?.((step) => this.#writes.exclusive(step));
  }

  snapshot(): AsyncGenerator<LogRecord[]> {
    return this.#snapshots.read(this.#current);
  }

  async logRows(after: number, upTo: number, limit: number): Promise<LogRecord[]> {
    const bound = Math.min(upTo, this.#hub.polled);
    if (bound <= after) return [];
    return (await this.#reader.events(after, bound, limit)).map(toRecord);
  }

  /**
   * Compacts history exactly up to `revision`; returns the current revision.
   * A run cut short by `--compact-timeout` goes on from where it stopped, so
   * the answer means every read below `revision` is now refused. Reading the
   * compact revision back also trims the key index.
   */
  async compact(revision: number): Promise<number> {
    await this.#compactor.compact(revision);
    let revisions = await this.#revisions();
    while (revisions.compact < revision) {
      await this.#compactor.compact(revision);
      revisions = await this.#revisions();
    }
    return revisions.current;
  }
}
