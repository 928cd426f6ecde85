/**
 * etcd's estimate of the bytes a write adds to the store (its quota "cost"),
 * and the gate writes pass through.
 *
 * @module
 */
import type { WirePutRequest, WireRequestOp, WireTxnRequest } from "../translator/wire.ts";

/**
 * Called before every request that writes (Put, DeleteRange, a Txn that
 * writes, Compact, LeaseGrant, LeaseRevoke; never reads): throws etcd's
 * error when it may not run now. `cost` is etcd's estimate of the bytes it
 * adds ({@link putCost}, {@link txnCost}, {@link LEASE_COST}; 0 for a delete).
 */
export type WriteGate = (cost: number) => void;

/** etcd's kvOverhead: the bytes it counts for a key's metadata. */
const KV_OVERHEAD = 256;
/** etcd's leaseOverhead: what it counts for a lease. */
export const LEASE_COST = 64;

export function putCost(p: WirePutRequest): number {
  return KV_OVERHEAD + (p.key?.length ?? 0) + (p.value?.length ?? 0);
}

function opsCost(ops: WireRequestOp[]): number {
  let cost = 0;
  for (const o of ops) {
    if (o.request_put) cost += putCost(o.request_put);
    // etcd 3.4 counts top-level puts only; a put in a nested txn writes as much.
    else if (o.request_txn) cost += txnCost(o.request_txn);
  }
  return cost;
}

/** The costlier branch: a txn with a put in either branch costs something, whichever runs. */
export function txnCost(t: WireTxnRequest): number {
  return Math.max(opsCost(t.success), opsCost(t.failure));
}
