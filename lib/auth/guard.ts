/**
 * The permission checks etcd makes before serving a request once auth is
 * enabled (server/etcdserver/apply_auth.go, v3_server.go, v3rpc/watch.go):
 * Range needs read on its range; Put write on its key (read too with
 * `prev_kv`, and write on every key already attached to its lease);
 * DeleteRange write on its range (read too with `prev_kv`); a Txn read on
 * every compare and the checks of every op in both branches, nested txns
 * included; LeaseRevoke write on the lease's keys; LeaseTimeToLive root or
 * read on them; Maintenance and membership changes root. While auth is off
 * every check passes without awaiting anything.
 */
import { toEtcdError } from "../translator/errors.ts";
import * as E from "./errors.ts";
import type { AuthInfo, AuthStore, Caller } from "./store.ts";

type Bytes = Uint8Array | undefined;
const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

interface WireOp {
  request_range?: { key?: Bytes; range_end?: Bytes } | null;
  request_put?: WirePut | null;
  request_delete_range?: WireDelete | null;
  request_txn?: WireTxn | null;
}
interface WirePut {
  key?: Bytes;
  lease?: number;
  prev_kv?: boolean;
}
interface WireDelete {
  key?: Bytes;
  range_end?: Bytes;
  prev_kv?: boolean;
}
interface WireTxn {
  compare?: { key?: Bytes; range_end?: Bytes }[];
  success?: WireOp[];
  failure?: WireOp[];
}

/**
 * A check: undefined when auth is off, else a promise that rejects with etcd's
 * error. `caller` is only asked for when auth is on.
 */
export type Check<Req> = (caller: () => Caller, request: Req) => Promise<void> | undefined;

export class AccessGuard {
  constructor(
    private readonly store: AuthStore,
    /** Keys attached to a lease (lib/lease). */
    private readonly leaseKeys: (id: number) => Promise<string[]>,
  ) {}

  /** Runs `check` with the caller's identity, only while auth is enabled. */
  #when<Req>(check: (ai: AuthInfo | undefined, r: Req) => void | Promise<void>): Check<Req> {
    return (caller, r) => {
      if (!this.store.state.enabled) return undefined;
      return this.store.authInfo(caller()).then((ai) => check(ai, r));
    };
  }

  #read(ai: AuthInfo | undefined, key: Bytes, end: Bytes): void {
    this.store.checkRange(ai, key ?? EMPTY, end, false);
  }

  #write(ai: AuthInfo | undefined, key: Bytes, end: Bytes): void {
    this.store.checkRange(ai, key ?? EMPTY, end, true);
  }

  /** A put may not attach a lease whose keys the caller could not write (it could not revoke it). */
  async #leaseWritable(ai: AuthInfo | undefined, lease: number | undefined): Promise<void> {
    if (!lease) return;
    for (const k of await this.leaseKeys(lease)) this.#write(ai, encoder.encode(k), undefined);
  }

  async #put(ai: AuthInfo | undefined, p: WirePut): Promise<void> {
    this.#write(ai, p.key, undefined);
    if (p.prev_kv) this.#read(ai, p.key, undefined);
    await this.#leaseWritable(ai, p.lease);
  }

  #delete(ai: AuthInfo | undefined, d: WireDelete): void {
    if (d.prev_kv) this.#read(ai, d.key, d.range_end);
    this.#write(ai, d.key, d.range_end);
  }

  async #txn(ai: AuthInfo | undefined, t: WireTxn): Promise<void> {
    for (const c of t.compare ?? []) this.#read(ai, c.key, c.range_end);
    for (const op of [...(t.success ?? []), ...(t.failure ?? [])]) {
      if (op.request_range) this.#read(ai, op.request_range.key, op.request_range.range_end);
      else if (op.request_put) await this.#put(ai, op.request_put);
      else if (op.request_delete_range) this.#delete(ai, op.request_delete_range);
      else if (op.request_txn) await this.#txn(ai, op.request_txn);
    }
  }

  readonly range: Check<{ key?: Bytes; range_end?: Bytes }> = this.#when((ai, r) =>
    this.#read(ai, r.key, r.range_end)
  );
  readonly put: Check<WirePut> = this.#when((ai, r) => this.#put(ai, r));
  readonly deleteRange: Check<WireDelete> = this.#when((ai, r) => this.#delete(ai, r));
  readonly txn: Check<WireTxn> = this.#when((ai, r) => this.#txn(ai, r));

  /** Compaction, maintenance and membership changes: root only. */
  readonly admin: Check<unknown> = this.#when((ai) => this.store.checkAdmin(ai));

  /** Anyone may use leases, but a token sent must be valid. */
  readonly authenticated: Check<unknown> = this.#when(() => {});

  readonly leaseRevoke: Check<{ ID: number }> = this.#when(async (ai, r) => {
    for (const k of await this.leaseKeys(r.ID)) this.#write(ai, encoder.encode(k), undefined);
  });

  readonly leaseTimeToLive: Check<{ ID: number }> = this.#when(async (ai, r) => {
    try {
      this.store.checkAdmin(ai);
    } catch {
      for (const k of await this.leaseKeys(r.ID)) this.#read(ai, encoder.encode(k), undefined);
    }
  });

  /**
   * For a watch create: the user it runs as (undefined while auth is off),
   * or the cancel reason etcd sends when the caller may not read the range.
   */
  async watchCreate(
    caller: Caller,
    key: Bytes,
    end: Bytes,
  ): Promise<{ user?: string } | { denied: string }> {
    if (!this.store.state.enabled) return {};
    try {
      const ai = await this.store.authInfo(caller);
      // etcd watches "\0" when no key is given.
      this.#read(ai, key && key.length > 0 ? key : new Uint8Array([0]), end);
      return { user: ai!.user };
    } catch (err) {
      return { denied: E.cancelReason(toEtcdError(err)) };
    }
  }

  /** True while `user` may still read what its watch covers. */
  watchPermitted(user: string, key: Bytes, end: Bytes): boolean {
    return this.store.mayRead(user, key && key.length > 0 ? key : new Uint8Array([0]), end);
  }

  /** Calls `fn` whenever users, roles or the switch change. */
  onChange(fn: () => void): () => void {
    return this.store.onChange(fn);
  }

  enabled(): boolean {
    return this.store.state.enabled;
  }
}

/** etcd's cancel reason for a watch whose permission was revoked. */
export const REVOKED_REASON = E.cancelReason(E.permissionDenied());
