/**
 * Leases with expiry. kine-for-Deno's own leases carry etcd-style IDs
 * (≥ 2^32) and are persisted with a wall-clock deadline; keys attached to one
 * are deleted, as ordinary delete rows, when it expires or is revoked.
 * Rows written by upstream kine hold a TTL in seconds in their lease column
 * instead: such a key (lease below 2^32 and not a known lease) expires that
 * many seconds after kine saw its write, as upstream does.
 *
 * @module
 */
import { BackendError } from "../backend/errors.ts";
import {
  type Backend,
  type Event,
  FROM_KEY,
  type LeaseRecord,
  type Op,
  type Txn,
  type WatchResult,
} from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";

/** Lease values below this are upstream kine's TTL-in-seconds. */
export const LEGACY_LEASE_LIMIT = 2 ** 32;
/** etcd's largest lease TTL, seconds. */
export const MAX_LEASE_TTL = 9_000_000_000;
const TICK_MS = 250;

export const ERR_LEASE_NOT_FOUND = "etcdserver: requested lease not found";

export const leaseNotFound = () => new BackendError("not_found", ERR_LEASE_NOT_FOUND);

interface Attached {
  lease: number;
  modRevision: number;
}

interface LegacyExpiry {
  modRevision: number;
  deadline: number;
}

/** Tracks leases and the keys attached to them, and expires them on time. */
export class LeaseManager {
  readonly #leases = new Map<number, LeaseRecord>();
  /** Lease → keys attached to it. */
  readonly #byLease = new Map<number, Set<string>>();
  /** Key → the lease its live row carries. */
  readonly #byKey = new Map<string, Attached>();
  readonly #legacy = new Map<string, LegacyExpiry>();
  /** Keys written with a lease this process does not know (revoked, or granted elsewhere). */
  readonly #orphans = new Map<string, Attached>();
  #timer?: ReturnType<typeof setInterval>;
  #watch?: WatchResult;
  #expiring?: Promise<void>;

  constructor(
    private readonly backend: Backend,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Loads leases, indexes every live leased key, then follows changes. */
  async start(): Promise<void> {
    for (const l of await this.backend.leaseRecords()) this.#leases.set(l.id, l);
    const { revision, keys } = await this.backend.leasedKeys();
    for (const k of keys) this.#track(k.key, k.lease, k.modRevision);
    this.#watch = await this.backend.watch(
      "\0",
      FROM_KEY,
      revision + 1,
      (events) => this.#follow(events),
    );
    this.#timer = setInterval(() => this.#expire(), TICK_MS);
  }

  /** Stops expiring and following; waits for an expiry pass under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#watch?.cancel();
    await this.#expiring;
  }

  #follow(events: Event[]): void {
    for (const e of events) {
      if (e.type === "delete") this.#untrack(e.kv.key);
      else this.#track(e.kv.key, e.kv.lease, e.kv.modRevision);
    }
  }

  #untrack(key: string): void {
    const was = this.#byKey.get(key);
    if (was) {
      this.#byLease.get(was.lease)?.delete(key);
      this.#byKey.delete(key);
    }
    this.#legacy.delete(key);
    this.#orphans.delete(key);
  }

  #track(key: string, lease: number, modRevision: number): void {
    this.#untrack(key);
    if (lease === 0) return;
    if (!this.#leases.has(lease)) {
      if (lease < LEGACY_LEASE_LIMIT) {
        this.#legacy.set(key, { modRevision, deadline: this.now() + lease * 1000 });
      } else this.#orphans.set(key, { lease, modRevision });
      return;
    }
    this.#byKey.set(key, { lease, modRevision });
    let keys = this.#byLease.get(lease);
    if (!keys) this.#byLease.set(lease, keys = new Set());
    keys.add(key);
  }

  has(id: number): boolean {
    return this.#leases.has(id);
  }

  async grant(id: number, ttl: number): Promise<LeaseRecord> {
    if (ttl > MAX_LEASE_TTL) {
      throw new BackendError("out_of_range", "etcdserver: too large lease TTL");
    }
    if (id === 0) {
      do {
        id = LEGACY_LEASE_LIMIT + Math.floor(Math.random() * (2 ** 52 - LEGACY_LEASE_LIMIT));
      } while (this.#leases.has(id));
    } else if (this.#leases.has(id)) {
      throw new BackendError("failed_precondition", "etcdserver: lease already exists");
    }
    const lease = { id, ttl: Math.max(ttl, 1), expiresAt: 0 };
    lease.expiresAt = this.now() + lease.ttl * 1000;
    await this.backend.saveLease(lease);
    this.#leases.set(id, lease);
    return lease;
  }

  /** Extends a lease to its full TTL; returns the TTL, or 0 if the lease is gone. */
  async keepAlive(id: number): Promise<number> {
    const lease = this.#leases.get(id);
    // Past its deadline a lease is gone, even before the expiry tick deletes it.
    if (!lease || lease.expiresAt <= this.now()) return 0;
    const renewed = { ...lease, expiresAt: this.now() + lease.ttl * 1000 };
    await this.backend.saveLease(renewed);
    if (this.#leases.has(id)) this.#leases.set(id, renewed);
    return lease.ttl;
  }

  /**
   * A lease's TTL and keys. The key index follows the log through the watch
   * poll, so it first catches up with every write acknowledged so far.
   */
  async timeToLive(
    id: number,
  ): Promise<{ ttl: number; grantedTtl: number; keys: string[] } | undefined> {
    await this.#caughtUp();
    const lease = this.#leases.get(id);
    if (!lease) return undefined;
    const left = Math.max(0, Math.ceil((lease.expiresAt - this.now()) / 1000));
    return { ttl: left, grantedTtl: lease.ttl, keys: [...(this.#byLease.get(id) ?? [])].sort() };
  }

  /** Live leases: one past its deadline is gone, even before the expiry tick deletes it. */
  list(): number[] {
    const now = this.now();
    return [...this.#leases.values()].filter((l) => l.expiresAt > now).map((l) => l.id);
  }

  /** Deletes a lease and, in one txn, every key still attached to it; returns the revision. */
  async revoke(id: number): Promise<number> {
    if (!this.#leases.has(id)) throw leaseNotFound();
    return await this.#drop(id);
  }

  /** Waits until the key index has seen every write acknowledged so far. */
  #caughtUp(): Promise<void> {
    return this.backend.waitForSyncTo(this.backend.currentRevision());
  }

  async #drop(id: number): Promise<number> {
    await this.#caughtUp();
    const keys = [...(this.#byLease.get(id) ?? [])];
    const txns: Txn[] = keys.map((key) => ({
      compare: [{ key, end: "", target: "lease", result: "equal", operand: id }],
      success: [{ type: "delete", key, end: "", prevKv: false }],
      failure: [],
    }));
    let revision: number;
    if (this.backend.capabilities?.multiKeyTxn === false) {
      // One txn per key where a txn may write one key only (NATS).
      revision = this.backend.currentRevision();
      for (const txn of txns) revision = (await this.backend.txn(txn)).revision;
    } else {
      const ops: Op[] = txns.map((txn) => ({ type: "txn", txn }));
      revision = (await this.backend.txn({ compare: [], success: ops, failure: [] })).revision;
    }
    await this.backend.deleteLease(id);
    this.#leases.delete(id);
    this.#byLease.delete(id);
    for (const key of keys) this.#byKey.delete(key);
    return revision;
  }

  #expire(): void {
    if (this.#expiring) return;
    this.#expiring = this.#expirePass().finally(() => this.#expiring = undefined);
  }

  async #expirePass(): Promise<void> {
    try {
      let now = this.now();
      if (this.#orphans.size > 0 || [...this.#leases.values()].some((l) => l.expiresAt <= now)) {
        // Before deleting anything: another kine process on the store may have granted,
        // renewed or revoked these leases.
        await this.#reload();
        now = this.now();
      }
      for (const lease of [...this.#leases.values()]) {
        if (lease.expiresAt <= now) await this.#drop(lease.id);
      }
      for (const [key, { modRevision }] of [...this.#orphans]) {
        await this.#deleteIfUnchanged(key, modRevision);
      }
      for (const [key, legacy] of [...this.#legacy]) {
        if (legacy.deadline <= now) await this.#deleteIfUnchanged(key, legacy.modRevision);
      }
    } catch (err) {
      this.logger.warn("lease expiry failed; retrying", { error: String(err) });
    }
  }

  /**
   * Takes the stored lease records as the truth, since processes sharing a
   * store grant, renew and revoke leases each: the later deadline wins, a
   * lease gone from the store is gone here (its keys become orphans), and the
   * keys of a lease granted elsewhere are attached to it.
   */
  async #reload(): Promise<void> {
    const stored = new Map((await this.backend.leaseRecords()).map((l) => [l.id, l]));
    for (const [id, local] of [...this.#leases]) {
      const record = stored.get(id);
      if (record) {
        if (record.expiresAt > local.expiresAt) this.#leases.set(id, record);
        continue;
      }
      this.#leases.delete(id);
      for (const key of this.#byLease.get(id) ?? []) {
        const attached = this.#byKey.get(key)!;
        this.#byKey.delete(key);
        this.#orphans.set(key, attached);
      }
      this.#byLease.delete(id);
    }
    for (const [id, record] of stored) if (!this.#leases.has(id)) this.#leases.set(id, record);
    for (const [key, { lease, modRevision }] of [...this.#orphans]) {
      if (this.#leases.has(lease)) this.#track(key, lease, modRevision);
    }
  }

  async #deleteIfUnchanged(key: string, modRevision: number): Promise<void> {
    await this.backend.txn({
      compare: [{ key, end: "", target: "mod", result: "equal", operand: modRevision }],
      success: [{ type: "delete", key, end: "", prevKv: false }],
      failure: [],
    });
    const tracked = this.#byKey.get(key)?.modRevision ?? this.#legacy.get(key)?.modRevision ??
      this.#orphans.get(key)?.modRevision;
    if (tracked === modRevision) this.#untrack(key);
  }
}
