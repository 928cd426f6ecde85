/**
 * Leases with expiry. kine-for-Deno's own leases carry etcd-style IDs
 * (≥ 2^32) and are persisted with a wall-clock deadline; keys attached to one
 * are deleted, as ordinary delete rows, when it expires or is revoked.
 * Rows written by upstream kine hold a TTL in seconds in their lease column
 * instead: such a key (lease below 2^32 and not a known lease) expires that
 * many seconds after kine saw its write, as upstream does.
 *
 * Several kine processes may share one store, so the lease records in the
 * store are the truth: grants, keep-alives and revokes through any process
 * hold for all, and nothing is decided on a record this process has not read.
 * One process at a time (the `lease_reaper` role) expires leases, and every
 * delete it makes is conditional, so a second attempt changes nothing.
 *
 * @module
 */
import { BackendError, StoreBusy } from "../backend/errors.ts";
import {
  type ChangeStream,
  type Event,
  FROM_KEY,
  type LeaseRecord,
  type LeaseStore,
  type MvccStore,
  type Op,
  type RoleStore,
  type Txn,
  type WatchResult,
} from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import type { KineMetrics } from "../metrics/mod.ts";
import { Role } from "../role/mod.ts";

/** Lease values below this are upstream kine's TTL-in-seconds. */
export const LEGACY_LEASE_LIMIT = 2 ** 32;
/** etcd's largest lease TTL, seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;
const TICK_MS = 250;
/**
 * Deadlines further away than this get no timer yet (a later pass arms it):
 * a timer past 2^31 ms would fire at once.
 */
const ARM_WITHIN_MS = 60_000;

export const ERR_LEASE_NOT_FOUND = "etcdserver: requested lease not found";

export const leaseNotFound = () => new BackendError("not_found", ERR_LEASE_NOT_FOUND);

/** The lease a key's live row carries. */
interface Attached {
  lease: number;
  modRevision: number;
  /** When this process saw the row (ms): the start of an upstream TTL. */
  seenAt: number;
}

/** How often a process re-reads the lease records for {@link LeaseManager.has}. */
const REFRESH_MS = 1000;

/**
 * Tracks the keys attached to leases (following the log, like a watcher),
 * answers the Lease API from the store's lease records, and, while it holds
 * the reaper role, expires leases on time.
 */
export class LeaseManager {
  /** Lease records as last read from the store: a cache for {@link has}. */
  #leases = new Map<number, LeaseRecord>();
  #refreshedAt = -Infinity;
  /** Lease (or upstream TTL) → keys whose live row carries it. */
  readonly #byLease = new Map<number, Set<string>>();
  /** Key → the lease its live row carries. */
  readonly #byKey = new Map<string, Attached>();
  readonly #reaper: Role;
  #timer?: ReturnType<typeof setInterval>;
  /** The next lease deadline this process knows of, and its timer. */
  #deadlineAt = Infinity;
  #deadline?: ReturnType<typeof setTimeout>;
  #watch?: WatchResult;
  #expiring?: Promise<void>;
  /** A deadline came while a pass was under way: run another right after it. */
  #again = false;
  /** The wall-clock time the last expiry pass went by. */
  #passNow = -Infinity;
  #stopped = false;

  constructor(
    private readonly backend: MvccStore & ChangeStream & LeaseStore & RoleStore,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
    metrics?: KineMetrics,
  ) {
    this.#reaper = new Role(backend, "lease_reaper", logger, metrics);
  }

  /** Indexes every live leased key, then follows changes and starts the expiry tick. */
  async start(): Promise<void> {
    await this.#refresh();
    const { revision, keys } = await this.backend.leasedKeys();
    for (const k of keys) this.#track(k.key, k.lease, k.modRevision);
    this.#watch = await this.backend.watch(
      "\0",
      FROM_KEY,
      revision + 1,
      (events) => this.#follow(events),
    );
    this.#timer = setInterval(() => this.#expire(), TICK_MS);
    this.#armNext();
  }

  /** Stops expiring and following; waits for an expiry pass under way; hands the role on. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    clearTimeout(this.#deadline);
    this.#watch?.cancel();
    await this.#expiring;
    await this.#reaper.release();
  }

  #follow(events: Event[]): void {
    for (const e of events) {
      if (e.type === "delete") this.#untrack(e.kv.key);
      else this.#track(e.kv.key, e.kv.lease, e.kv.modRevision);
    }
  }

  #untrack(key: string): void {
    const was = this.#byKey.get(key);
    if (!was) return;
    const keys = this.#byLease.get(was.lease);
    keys?.delete(key);
    if (keys?.size === 0) this.#byLease.delete(was.lease);
    this.#byKey.delete(key);
  }

  #track(key: string, lease: number, modRevision: number): void {
    this.#untrack(key);
    if (lease === 0) return;
    this.#byKey.set(key, { lease, modRevision, seenAt: this.now() });
    let keys = this.#byLease.get(lease);
    if (!keys) this.#byLease.set(lease, keys = new Set());
    keys.add(key);
  }

  /** Re-reads every lease record from the store. */
  async #refresh(): Promise<Map<number, LeaseRecord>> {
    const fresh = new Map<number, LeaseRecord>();
    for (const l of await this.backend.leaseRecords()) fresh.set(l.id, l);
    this.#leases = fresh;
    this.#refreshedAt = performance.now();
    return fresh;
  }

  /** One lease record, read from the store. */
  async #read(id: number): Promise<LeaseRecord | undefined> {
    const [lease] = await this.backend.leaseRecords(id);
    if (lease) this.#leases.set(id, lease);
    else this.#leases.delete(id);
    return lease;
  }

  /**
   * True if a key may be attached to lease `id`. Known leases answer from
   * the cache (re-read every second); an unknown one is looked up in the
   * store, since another process may have granted it a moment ago.
   */
  async has(id: number): Promise<boolean> {
    if (performance.now() - this.#refreshedAt > REFRESH_MS) await this.#refresh();
    return this.#leases.has(id) || await this.#read(id) !== undefined;
  }

  async grant(id: number, ttl: number): Promise<LeaseRecord> {
    if (ttl > MAX_LEASE_TTL) {
      throw new BackendError("out_of_range", "etcdserver: too large lease TTL");
    }
    const chosen = id !== 0;
    for (;;) {
      if (!chosen) {
        id = LEGACY_LEASE_LIMIT + Math.floor(Math.random() * (2 ** 52 - LEGACY_LEASE_LIMIT));
      }
      const lease = { id, ttl: Math.max(ttl, 1), expiresAt: 0 };
      lease.expiresAt = this.now() + lease.ttl * 1000;
      if (await this.backend.createLease(lease)) {
        this.#leases.set(id, lease);
        this.#arm(lease.expiresAt);
        return lease;
      }
      if (chosen) {
        throw new BackendError("failed_precondition", "etcdserver: lease already exists");
      }
    }
  }

  /** Extends a lease to its full TTL; returns the TTL, or 0 if the lease is gone. */
  async keepAlive(id: number): Promise<number> {
    // Past its deadline a lease is gone, even before the reaper deletes it.
    const renewed = await this.backend.renewLease(id, this.now());
    if (!renewed) return 0;
    this.#leases.set(id, renewed);
    return renewed.ttl;
  }

  /**
   * A lease's TTL and keys. The key index follows the log through the watch
   * poll, so it first catches up with every write acknowledged so far, by
   * any process.
   */
  async timeToLive(
    id: number,
  ): Promise<{ ttl: number; grantedTtl: number; keys: string[] } | undefined> {
    await this.#caughtUp();
    const lease = await this.#read(id);
    if (!lease) return undefined;
    const left = Math.max(0, Math.ceil((lease.expiresAt - this.now()) / 1000));
    return { ttl: left, grantedTtl: lease.ttl, keys: [...(this.#byLease.get(id) ?? [])].sort() };
  }

  /** Live leases: one past its deadline is gone, even before the reaper deletes it. */
  async list(): Promise<number[]> {
    const now = this.now();
    const leases = await this.#refresh();
    return [...leases.values()].filter((l) => l.expiresAt > now).map((l) => l.id);
  }

  /** Deletes a lease and, in one txn, every key still attached to it; returns the revision. */
  async revoke(id: number): Promise<number> {
    if (!await this.backend.deleteLease(id)) throw leaseNotFound();
    this.#leases.delete(id);
    return await this.#deleteKeys(id, true);
  }

  /** Waits until the key index has seen every write any process acknowledged so far. */
  async #caughtUp(): Promise<void> {
    await this.backend.waitForSyncTo(await this.backend.latestRevision());
  }

  /**
   * Deletes the keys still attached to a lease whose record is gone, each
   * only if it still carries the lease: a second attempt (by this process or
   * another) finds nothing to delete and writes no row. A revoke first
   * catches the index up with every process's writes, so it answers after
   * they are gone; expiry goes by the index as it is, and a key it has not
   * seen yet is an orphan for the next pass.
   */
  async #deleteKeys(id: number, catchUp: boolean): Promise<number> {
    if (catchUp) await this.#caughtUp();
    const keys = [...(this.#byLease.get(id) ?? [])];
    const txns: Txn[] = keys.map((key) => ({
      compare: [{ key, end: "", target: "lease", result: "equal", operand: id }],
      success: [{ type: "delete", key, end: "", prevKv: false }],
      failure: [],
    }));
    if (this.backend.capabilities?.multiKeyTxn === false) {
      // One txn per key where a txn may write one key only (NATS).
      let revision = this.backend.currentRevision();
      for (const txn of txns) revision = (await this.backend.txn(txn)).revision;
      return revision;
    }
    const ops: Op[] = txns.map((txn) => ({ type: "txn", txn }));
    return (await this.backend.txn({ compare: [], success: ops, failure: [] })).revision;
  }

  /**
   * Starts an expiry pass. The tick's passes find leases granted elsewhere and
   * upstream TTL keys; a lease deadline this process knows of has its own
   * timer ({@link #arm}), so a lease goes at its deadline, not up to a tick
   * (and a pass) later; a deadline that comes during a pass runs another
   * right after it.
   */
  #expire(atDeadline = false): void {
    if (this.#stopped) return;
    if (this.#expiring) {
      if (atDeadline) this.#again = true;
      return;
    }
    this.#again = false;
    this.#expiring = this.#expirePass().finally(() => {
      this.#expiring = undefined;
      if (this.#again) this.#expire();
      else this.#armNext();
    });
  }

  /**
   * Arms the deadline timer for the earliest deadline among the lease records
   * known. Deadlines the last pass already saw pass are the tick's to retry
   * (a store that is away must not turn this into a busy loop).
   */
  #armNext(): void {
    let next = Infinity;
    for (const { expiresAt } of this.#leases.values()) {
      if (expiresAt > this.#passNow) next = Math.min(next, expiresAt);
    }
    this.#arm(next);
  }

  /** Runs a pass at wall-clock time `at` unless one is already due by then. */
  #arm(at: number): void {
    const delay = at - this.now();
    if (this.#stopped || !(delay <= ARM_WITHIN_MS)) return;
    if (this.#deadline !== undefined && this.#deadlineAt <= at) return;
    clearTimeout(this.#deadline);
    this.#deadlineAt = at;
    this.#deadline = setTimeout(() => {
      this.#deadline = undefined;
      this.#deadlineAt = Infinity;
      this.#expire(true);
    }, Math.max(0, delay));
  }

  /**
   * One pass of the reaper: expired leases (record first, conditional on its
   * deadline, then their keys), keys whose lease record is gone (revoked or
   * expired elsewhere, or a process died between the two steps), and upstream
   * TTL keys past their time.
   */
  async #expirePass(): Promise<void> {
    this.#passNow = this.now();
    try {
      if (!await this.#reaper.held()) return;
      // Keys indexed up to here were written after their lease was granted: read the records now.
      const position = this.backend.syncedRevision();
      const leases = await this.#refresh();
      const now = this.#passNow = this.now();
      for (const lease of leases.values()) {
        if (lease.expiresAt > now) continue;
        if (await this.backend.deleteLease(lease.id, now)) {
          this.#leases.delete(lease.id);
          await this.#deleteKeys(lease.id, false);
        }
      }
      for (const [lease, keys] of [...this.#byLease]) {
        if (leases.has(lease)) continue;
        for (const key of [...keys]) {
          const at = this.#byKey.get(key);
          if (!at || at.modRevision > position) continue;
          if (lease < LEGACY_LEASE_LIMIT && at.seenAt + lease * 1000 > now) continue;
          await this.#deleteIfUnchanged(key, at.modRevision);
        }
      }
    } catch (err) {
      const log = err instanceof StoreBusy ? this.logger.debug : this.logger.warn;
      log.call(this.logger, "lease expiry failed; retrying", { error: String(err) });
    }
  }

  async #deleteIfUnchanged(key: string, modRevision: number): Promise<void> {
    await this.backend.txn({
      compare: [{ key, end: "", target: "mod", result: "equal", operand: modRevision }],
      success: [{ type: "delete", key, end: "", prevKv: false }],
      failure: [],
    });
    if (this.#byKey.get(key)?.modRevision === modRevision) this.#untrack(key);
  }
}
