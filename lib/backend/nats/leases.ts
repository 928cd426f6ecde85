/**
 * kine's lease records and role claims in the `<bucket>-leases` KV bucket:
 * each step reads an entry and writes it conditional on the revision it read,
 * so processes sharing the bucket never overwrite each other's change.
 *
 * @module
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { BackendError } from "../errors.ts";
import type { LeaseRecord } from "../types.ts";
import type { LeaseMirror } from "./lease_mirror.ts";

/** How often a conditional write is tried while other writers change its key first. */
export const CONFLICT_RETRIES = 20;

/** Keys of the lease bucket that hold roles (lib/role), not leases. */
export const ROLE_PREFIX = "_role.";

/** The bucket that holds kine's lease records beside the key-value bucket `bucket`. */
export function leaseBucket(bucket: string): string {
  return `${bucket}-leases`;
}

/** An error as the backend answers it: a NATS failure is `unavailable`. */
export function asBackendError(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  return new BackendError("unavailable", `etcdserver: ${(err as Error)?.message ?? err}`);
}

/** How long a listing of every lease waits for the mirror to reach the stream's end. */
const MIRROR_WAIT_MS = 5000;

/** The lease bucket's records and roles. */
export class LeaseBucket {
  /**
   * @param kv the lease bucket
   * @param mirror its records, following its stream
   * @param lastSeq the sequence of the stream's last message, asked of the server
   */
  constructor(
    private readonly kv: KV,
    private readonly mirror: LeaseMirror,
    private readonly lastSeq: () => Promise<number>,
  ) {}

  /**
   * One lease record read from the bucket, or every one: the mirror once it
   * has applied every message the stream held when asked (so a grant or
   * keep-alive any process made before the call is in the answer).
   */
  async records(id?: number): Promise<LeaseRecord[]> {
    try {
      if (id !== undefined) {
        const e = await this.kv.get(String(id));
        return e && e.operation === "PUT" ? [e.json<LeaseRecord>()] : [];
      }
      if (!await this.mirror.reach(await this.lastSeq(), MIRROR_WAIT_MS)) {
        throw new BackendError("unavailable", "etcdserver: lease records not yet read");
      }
      return this.mirror.records();
    } catch (err) {
      throw asBackendError(err);
    }
  }

  /**
   * Runs a read-then-write step on the lease bucket, conditional on the
   * entry's revision; another process's write in between makes it false.
   */
  async #step(fn: (kv: KV) => Promise<boolean>): Promise<boolean> {
    try {
      return await fn(this.kv);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10071) return false;
      throw asBackendError(err);
    }
  }

  async create(lease: LeaseRecord): Promise<boolean> {
    return await this.#step(async (kv) => {
      await kv.create(String(lease.id), JSON.stringify(lease));
      return true;
    });
  }

  /**
   * Runs a read-then-write step on the lease bucket again while another
   * process writes the entry in between (a keep-alive racing a revoke).
   */
  async #retry<T>(step: (kv: KV) => Promise<T>): Promise<T> {
    for (let attempt = 1; attempt <= CONFLICT_RETRIES; attempt++) {
      try {
        return await step(this.kv);
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === 10071)) throw asBackendError(err);
      }
    }
    throw new BackendError(
      "unavailable",
      "etcdserver: request timed out, possibly due to conflict",
    );
  }

  renew(id: number, now: number): Promise<LeaseRecord | undefined> {
    return this.#retry(async (kv) => {
      const e = await kv.get(String(id));
      if (!e || e.operation !== "PUT") return undefined;
      const lease = e.json<LeaseRecord>();
      if (lease.expiresAt <= now) return undefined;
      const renewed = { ...lease, expiresAt: now + lease.ttl * 1000 };
      await kv.update(String(id), JSON.stringify(renewed), e.revision);
      return renewed;
    });
  }

  delete(id: number, expiredBy?: number): Promise<boolean> {
    return this.#retry(async (kv) => {
      const e = await kv.get(String(id));
      if (!e || e.operation !== "PUT") return false;
      if (expiredBy !== undefined && e.json<LeaseRecord>().expiresAt > expiredBy) return false;
      await kv.purge(String(id), { previousSeq: e.revision });
      return true;
    });
  }

  async claimRole(role: string, holder: string, ttlMs: number): Promise<boolean> {
    const key = ROLE_PREFIX + role;
    const now = Date.now();
    const claim = JSON.stringify({ holder, until: now + ttlMs });
    return await this.#step(async (kv) => {
      const e = await kv.get(key);
      if (!e || e.operation !== "PUT") {
        await kv.create(key, claim);
        return true;
      }
      const held = e.json<{ holder: string; until: number }>();
      if (held.holder !== holder && held.until >= now) return false;
      await kv.update(key, claim, e.revision);
      return true;
    });
  }
}
