/**
 * The NATS JetStream backend (spec §7): kine's revision log is the stream
 * behind a JetStream KV bucket. Each write is one conditional publish
 * (expected last sequence of its key), so a revision is a stream sequence and
 * a txn may compare and write one key only (capability `multiKeyTxn: false`).
 * Every process follows the whole stream with an ordered consumer into an
 * in-memory copy ({@link Replica}) that serves reads, compares and watches.
 *
 * @module
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import {
  type ConsumerMessages,
  DeliverPolicy,
  jetstream,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { Logger } from "../../log/mod.ts";
import { BackendError, compacted, dsnError, futureRevision } from "../errors.ts";
import { COMPACT_KEY, presentKv } from "../logstructured/compact_key.ts";
import { CountCache } from "../logstructured/count_cache.ts";
import { presentEvents } from "../logstructured/events.ts";
import { Fanout } from "../logstructured/fanout.ts";
import { rowToKv } from "../logstructured/log.ts";
import { subscribe } from "../logstructured/subscribe.ts";
import { toRecord } from "../logstructured/snapshot.ts";
import { hashKeySpace } from "../hash.ts";
import { ReadIndex } from "../read_index.ts";
import { checkTxn, multiKeyUnsupported, txnKeys, TxnRunner } from "../logstructured/txn.ts";
import type {
  Backend,
  DeleteOp,
  EventSink,
  KvHash,
  LeasedKeys,
  LeaseRecord,
  LogRecord,
  RangeDeleted,
  RangeRequest,
  RangeResult,
  Status,
  Txn,
  TxnResult,
  WatchResult,
} from "../types.ts";
import { decodeRecord, encodeRecord, RecordError } from "./codec.ts";
import { Publisher, PublishRefused } from "./acks.ts";
import { connectNats } from "./connect.ts";
import {
  asBackendError,
  CONFLICT_RETRIES,
  LeaseBucket,
  leaseBucket,
  ROLE_PREFIX,
} from "./leases.ts";
import { LeaseMirror } from "./lease_mirror.ts";
import { deleteRange } from "./delete_range.ts";
import { KeyNames } from "./keys.ts";
import { type NatsOptions, type NatsTls, parseNatsEndpoint } from "./options.ts";
import type { BackendOptions, OpenedBackend } from "../endpoint.ts";
import { type Operation, Replica } from "./replica.ts";
import { Conflict, NatsTx, type Publish } from "./tx.ts";

const HEALTH_KEY = "/registry/health";
const HEALTH_VALUE = new TextEncoder().encode('{"health":"true"}');
/** How long a writer waits for its own write to reach the index (read-your-writes). */
const SYNC_TIMEOUT_MS = 5000;
/** How long start-up waits for the index to replay the stream. */
const REPLAY_TIMEOUT_MS = 60_000;
/** JetStream request timeout: a write during an outage fails after this, never hangs. */
const REQUEST_TIMEOUT_MS = 5000;
/** How long one pull of the stream consumer waits; it heartbeats every half of it. */
const CONSUMER_EXPIRES_MS = 2000;
const CATCH_UP_BATCH = 1000;
/**
 * Messages the consumer keeps asked for, and how few may be left before it asks again: the
 * defaults (100, 75 %) cost a pull request per 25 messages of a replay, and each request a
 * socket write from the event loop.
 */
const PULL_BATCH = 4096;
const PULL_THRESHOLD = 1024;

export interface NatsBackendOptions {
  nats: NatsOptions;
  tls: Partial<NatsTls>;
  logger: Logger;
}

/** Retries bucket creation while the JetStream cluster is not ready (spec §7.2). */
export async function retryUnready<T>(fn: () => Promise<T>, logger: Logger): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = err instanceof JetStreamApiError ? err.code : 0;
      const unready = code === 10008 || code === 10005 || (err as Error)?.name === "TimeoutError";
      if (!unready || attempt >= 60) throw err;
      logger.warn("JetStream not ready; retrying", { error: String(err) });
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** Rows per page of a snapshot. */
const SNAPSHOT_PAGE = 1000;

export class NatsBackend implements Backend {
  readonly capabilities = { multiKeyTxn: false, name: "NATS" };
  readonly #replica: Replica;
  readonly #fanout = new Fanout();
  readonly #counts = new CountCache();
  readonly #readIndex = new ReadIndex(
    () => this.latestRevision(),
    (revision) => this.waitForSyncTo(revision),
  );
  readonly #prefix: string;
  readonly #names = new KeyNames();
  #nc?: NatsConnection;
  #js?: JetStreamClient;
  #publisher?: Publisher;
  #jsm?: JetStreamManager;
  #leases?: LeaseBucket;
  #leaseMirror?: LeaseMirror;
  #messages?: ConsumerMessages;
  #unreadable = 0;
  /** The last queued write of each key this process is writing. */
  readonly #writers = new Map<string, Promise<unknown>>();
  #closed = false;

  constructor(private readonly o: NatsBackendOptions) {
    this.#replica = new Replica(o.nats.revHistory);
    this.#prefix = `$KV.${o.nats.bucket}.`;
  }

  get #stream(): string {
    return `KV_${this.o.nats.bucket}`;
  }

  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async #start(): Promise<void> {
    const { nats, logger } = this.o;
    for (const p of nats.ignored) {
      logger.warn(
        `endpoint parameter ${p} has no effect: this kine is a NATS client, never a server`,
      );
    }
    this.#nc = await connectNats(nats, this.o.tls, logger);
    this.#js = jetstream(this.#nc, { timeout: REQUEST_TIMEOUT_MS });
    this.#publisher = new Publisher(this.#nc, REQUEST_TIMEOUT_MS);
    const kvm = new Kvm(this.#js);
    await retryUnready(() =>
      kvm.create(nats.bucket, {
        history: nats.revHistory,
        replicas: nats.replicas,
        description: "Holds kine key/values",
      }), logger);
    const leasesKv = await retryUnready(() =>
      kvm.create(leaseBucket(nats.bucket), {
        history: 1,
        replicas: nats.replicas,
        description: "Holds kine leases",
      }), logger);
    // Once: each jetstreamManager() asks the server for its account info first.
    const jsm = this.#jsm = await this.#js.jetstreamManager();
    const leaseStream = `KV_${leaseBucket(nats.bucket)}`;
    this.#leaseMirror = new LeaseMirror(
      this.#js,
      leaseStream,
      `$KV.${leaseBucket(nats.bucket)}.`,
      ROLE_PREFIX,
    );
    // Its consumer is made while the key-value stream replays, not before.
    const mirrored = this.#leaseMirror.start();
    mirrored.catch(() => {}); // awaited below, unless the replay fails first
    this.#leases = new LeaseBucket(
      leasesKv,
      this.#leaseMirror,
      async () => (await jsm.streams.info(leaseStream)).state.last_seq,
    );
    const last = (await jsm.streams.info(this.#stream)).state.last_seq;
    const replay = performance.now();
    const consumer = await this.#js.consumers.get(this.#stream, {
      deliver_policy: DeliverPolicy.All,
    });
    // Short pulls: two missed heartbeats (2 s) after a server restart re-create the consumer
    // at the last delivered sequence, so watches and read-your-writes resume within seconds.
    this.#messages = await consumer.consume({
      callback: (m) => this.#apply(m),
      expires: CONSUMER_EXPIRES_MS,
      max_messages: PULL_BATCH,
      threshold_messages: PULL_THRESHOLD,
    });
    (async () => {
      for await (const s of this.#messages!.status()) {
        if (s.type === "heartbeats_missed" || s.type === "reset") {
          logger.debug("NATS stream consumer", { status: s.type });
        }
      }
    })().catch(() => {});
    if (!(await this.#replica.waitFor(last, REPLAY_TIMEOUT_MS))) {
      throw new Error(`timed out reading bucket ${nats.bucket} up to revision ${last}`);
    }
    await mirrored;
    // As the SQL backends log their index build: what a cold start cost.
    logger.info("key index built", {
      ...this.#replica.stats,
      duration: `${Math.round(performance.now() - replay)}ms`,
    });
    if (this.#unreadable > 0) {
      logger.warn(`${this.#unreadable} records of bucket ${nats.bucket} are not readable`, {
        hint: "records written by upstream kine (S2-compressed JSON) are skipped",
      });
    }
    // Upstream's start-up: the health key exists, then one update (a fresh bucket is at 2).
    const health = {
      type: "put" as const,
      key: HEALTH_KEY,
      value: HEALTH_VALUE,
      lease: 0,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    };
    if (!this.#replica.latest(HEALTH_KEY)) {
      await this.txn({ compare: [], success: [health], failure: [] });
    }
    await this.txn({ compare: [], success: [health], failure: [] });
  }

  /** Applies one stream message to the index and hands its event to watchers. */
  #apply(m: JsMsg): void {
    let key: string | null = null;
    if (m.subject.startsWith(this.#prefix)) {
      try {
        key = this.#names.decode(m.subject.slice(this.#prefix.length));
      } catch {
        // not a key kine writes
      }
    }
    const data = m.data;
    // A KV delete or purge marker has no body, a record always one: only a message without one
    // has its headers read (parsing every message's headers was a tenth of a replay's CPU).
    const kvOp = data.length === 0 ? m.headers?.get("KV-Operation") : undefined;
    let op: Operation;
    if (kvOp === "DEL") op = { type: "delete" };
    else if (kvOp === "PURGE") op = { type: "purge" };
    else {
      try {
        op = { type: "put", record: decodeRecord(data) };
      } catch (err) {
        if (!(err instanceof RecordError)) throw err;
        this.#unreadable++;
        op = { type: "unreadable" };
      }
    }
    const event = this.#replica.apply(m.seq, key, op);
    // Nobody watches during the start-up replay: no batch to build per message.
    if (event && this.#fanout.size > 0) this.#fanout.publish(presentEvents([event]));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#fanout.clear();
    this.#replica.release();
    await this.#messages?.close().catch(() => {});
    await this.#leaseMirror?.close();
    this.#publisher?.close();
    await this.#nc?.close().catch(() => {});
  }

  /** Times a call; slower than `slowMethod` is logged. */
  async #timed<T>(method: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      const took = performance.now() - started;
      if (took > this.o.nats.slowMethodMs) {
        this.o.logger.warn(`Slow method ${method}`, { duration: `${Math.round(took)}ms` });
      }
    }
  }

  /**
   * A Range from the key index. A linearizable one (the default) first runs
   * etcd's ReadIndex: it learns the stream's last sequence and waits until
   * the index has applied it, so it sees every write another server
   * acknowledged before it started. A serializable one reads at once: this
   * process's own writes reached the index before they were acknowledged.
   */
  range(request: RangeRequest): Promise<RangeResult> {
    return this.#timed("range", async () => {
      if (!request.serializable) await this.linearize();
      const result = await this.#replica.range(request, this.#counts.take(request));
      this.#counts.remember(request, result);
      return result;
    });
  }

  txn(txn: Txn): Promise<TxnResult> {
    checkTxn(txn);
    const { keys, writes, ranged } = txnKeys(txn);
    if (writes && (ranged || keys.size > 1)) {
      return Promise.reject(multiKeyUnsupported(this.capabilities.name));
    }
    if (!writes) return this.#timed("txn", () => this.#run(txn));
    // This process's writers of one key take turns, so only other processes can conflict.
    const key = [...keys][0];
    const turn = (this.#writers.get(key) ?? Promise.resolve()).then(() =>
      this.#timed("txn", () => this.#run(txn))
    );
    const tail = turn.catch(() => {});
    this.#writers.set(key, tail);
    tail.then(() => {
      if (this.#writers.get(key) === tail) this.#writers.delete(key);
    });
    return turn;
  }

  /** Runs a single-key txn, again while another writer of the key gets there first. */
  async #run(txn: Txn): Promise<TxnResult> {
    for (let attempt = 1;; attempt++) {
      try {
        return await new TxnRunner(new NatsTx(this.#replica, this.#publish)).run(txn);
      } catch (err) {
        if (!(err instanceof Conflict)) throw this.#classify(err);
        if (attempt >= CONFLICT_RETRIES) {
          throw new BackendError(
            "unavailable",
            "etcdserver: request timed out, possibly due to conflict",
          );
        }
        // Another writer got there first: run again once the index has its write.
        await this.#replica.waitFor(err.actual, SYNC_TIMEOUT_MS);
      }
    }
  }

  /** Publishes one row of (etcd key) `key` if the key's last message is still `expected`. */
  readonly #publish: Publish = async (key, data, expected) => {
    if (!this.#publisher) {
      throw new BackendError("unavailable", "etcdserver: NATS backend not started");
    }
    let seq: number;
    try {
      // A plain JetStream publish, not the KV client's put: on "wrong last sequence" that reads
      // the key and, if its last message is a delete marker, writes again expecting the marker,
      // past the compare the txn made.
      const h = headers();
      h.set("Nats-Expected-Last-Subject-Sequence", String(expected));
      seq = await this.#publisher.publish(this.#prefix + this.#names.encode(key), data, h);
    } catch (err) {
      if (err instanceof PublishRefused && err.refusal.err_code === 10071) {
        const actual = Number(/(\d+)\s*$/.exec(err.message)?.[1] ?? 0);
        throw new Conflict(actual || this.#replica.applied + 1);
      }
      throw err;
    }
    await this.#sync(seq);
    return seq;
  };

  /** Waits until the index has applied this process's write `seq` (read-your-writes). */
  async #sync(seq: number): Promise<void> {
    if (!(await this.#replica.waitFor(seq, SYNC_TIMEOUT_MS)) && !this.#closed) {
      this.o.logger.warn("write not yet seen by this process's index", { revision: seq });
    }
  }

  /** A DeleteRange over several keys: pipelined single-key deletes ({@link deleteRange}). */
  deleteRange(op: DeleteOp): Promise<RangeDeleted> {
    if (!this.#nc) throw new BackendError("unavailable", "etcdserver: NATS backend not started");
    const context = {
      nc: this.#nc,
      replica: this.#replica,
      subject: (key: string) => this.#prefix + this.#names.encode(key),
      txn: (d: DeleteOp) => this.txn({ compare: [], success: [d], failure: [] }),
      sync: (seq: number) => this.#sync(seq),
    };
    return this.#timed("deleteRange", () =>
      deleteRange(context, op).catch((err) => {
        throw this.#classify(err);
      }));
  }

  #classify(err: unknown): BackendError {
    return asBackendError(err);
  }

  currentRevision(): number {
    return this.#replica.applied;
  }

  syncedRevision(): number {
    return this.#replica.applied;
  }

  async waitForSyncTo(revision: number): Promise<void> {
    while (!this.#closed && !(await this.#replica.waitFor(revision, 60_000)));
  }

  async watch(
    key: string,
    end: string,
    startRevision: number,
    sink: EventSink,
  ): Promise<WatchResult> {
    return await subscribe(
      {
        compact: this.#replica.revisions().compact,
        fanout: this.#fanout,
        reader: this.#replica,
        position: this.#replica.applied,
        batchSize: CATCH_UP_BATCH,
      },
      key,
      end,
      startRevision,
      sink,
    );
  }

  /**
   * Records the compact revision in kine's `compact_rev_key` record (one
   * revision, invisible to watchers); every index then drops the history
   * below it. JetStream itself bounds each key's history by `revHistory`.
   */
  compact(revision: number): Promise<number> {
    return this.#timed("compact", async () => {
      for (let attempt = 1;; attempt++) {
        const { current, compact } = this.#replica.revisions();
        if (revision > current) throw futureRevision();
        if (revision <= compact) throw compacted();
        const expected = this.#replica.lastSeq(COMPACT_KEY);
        try {
          await this.#publish(
            COMPACT_KEY,
            encodeRecord({
              created: true,
              deleted: false,
              createRevision: 0,
              prevRevision: revision,
              lease: 0,
              value: new Uint8Array(0),
              version: 0,
            }),
            expected,
          );
          this.o.logger.info(`COMPACT compacted to ${revision}`);
          return this.#replica.applied;
        } catch (err) {
          if (!(err instanceof Conflict) || attempt >= CONFLICT_RETRIES) throw this.#classify(err);
          await this.#replica.waitFor(err.actual, SYNC_TIMEOUT_MS);
        }
      }
    });
  }

  async status(): Promise<Status> {
    const { current, compact } = this.#replica.revisions();
    let dbSize = 0;
    try {
      dbSize = (await this.#jsm!.streams.info(this.#stream)).state.bytes;
    } catch (err) {
      throw this.#classify(err);
    }
    return { revision: current, compactRevision: compact, dbSize, dbSizeInUse: dbSize };
  }

  hashKV(revision: number): Promise<KvHash> {
    return hashKeySpace(this, revision);
  }

  /** JetStream manages its own storage: nothing to give back from here. */
  defragment(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Every message the copy in memory holds, up to the last one applied. The
   * pages are taken in one synchronous pass, so no message applied meanwhile
   * (a compaction among them) can split the copy.
   */
  async *snapshot(): AsyncGenerator<LogRecord[]> {
    const upTo = this.#replica.applied;
    const pages: LogRecord[][] = [];
    for (let after = 0; after < upTo;) {
      const rows = this.#replica.events(after, upTo, SNAPSHOT_PAGE);
      if (rows.length === 0) break;
      pages.push(rows.map(toRecord));
      after = rows[rows.length - 1].id;
    }
    yield* pages;
  }

  logRows(after: number, upTo: number, limit: number): Promise<LogRecord[]> {
    const bound = Math.min(upTo, this.#replica.applied);
    if (bound <= after) return Promise.resolve([]);
    return Promise.resolve(this.#replica.events(after, bound, limit).map(toRecord));
  }

  leasedKeys(): Promise<LeasedKeys> {
    const revision = this.#replica.applied;
    const keys = this.#replica.leased(revision).map((row) => {
      const kv = presentKv(rowToKv(row, true));
      return { key: kv.key, lease: kv.lease, modRevision: kv.modRevision };
    });
    return Promise.resolve({ revision, keys });
  }

  linearize(): Promise<number> {
    return this.#readIndex.barrier();
  }

  async latestRevision(): Promise<number> {
    try {
      return (await this.#jsm!.streams.info(this.#stream)).state.last_seq;
    } catch (err) {
      throw this.#classify(err);
    }
  }

  leaseRecords(id?: number): Promise<LeaseRecord[]> {
    return this.#leases!.records(id);
  }

  createLease(lease: LeaseRecord): Promise<boolean> {
    return this.#leases!.create(lease);
  }

  renewLease(id: number, now: number): Promise<LeaseRecord | undefined> {
    return this.#leases!.renew(id, now);
  }

  deleteLease(id: number, expiredBy?: number): Promise<boolean> {
    return this.#leases!.delete(id, expiredBy);
  }

  claimRole(role: string, holder: string, ttlMs: number): Promise<boolean> {
    return this.#leases!.claimRole(role, holder, ttlMs);
  }
}

/** The factory `lib/backend/endpoint.ts` registers for `nats://` and `jetstream://`. */
export function openNats(_dsn: string, o: BackendOptions): Promise<OpenedBackend> {
  let nats: NatsOptions;
  try {
    nats = parseNatsEndpoint(o.endpoint);
  } catch (err) {
    throw dsnError((err as Error).message);
  }
  const { tls, logger } = o;
  const backend = new NatsBackend({ nats, tls, logger });
  // Several kine processes may share a bucket.
  return Promise.resolve({ backend, leaderElect: true });
}
