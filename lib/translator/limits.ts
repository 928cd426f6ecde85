/**
 * etcd's request limits, applied as etcd applies them: `--max-txn-ops` bounds
 * the compares and each branch of a txn, a nested txn getting what its parent
 * left over; `--max-request-bytes` bounds the encoded size of every request
 * that writes (Put, DeleteRange, a Txn with a write). Reads are bounded only
 * by the gRPC message limit, as in etcd.
 */
import { Code, EtcdError } from "./errors.ts";
import type * as W from "./wire.ts";

/** The limits a {@link Translator} enforces. */
export interface RequestLimits {
  /** etcd's `--max-txn-ops` (default 128). */
  maxTxnOps: number;
  /** etcd's `--max-request-bytes` (default 1.5 MiB). */
  maxRequestBytes: number;
}

export const DEFAULT_MAX_TXN_OPS = 128;
export const DEFAULT_MAX_REQUEST_BYTES = 1536 * 1024;

export const tooManyOps = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: too many operations in txn request");
export const requestTooLarge = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: request is too large");

/**
 * etcd's count: the largest of compares, success and failure ops, at most
 * `budget`; each nested txn may use what is left (`budget` less that count).
 */
export function checkTxnOps(t: W.WireTxnRequest, budget: number): void {
  const count = Math.max(t.compare.length, t.success.length, t.failure.length);
  if (count > budget) throw tooManyOps();
  for (const o of [...t.success, ...t.failure]) {
    if (o.request_txn) checkTxnOps(o.request_txn, budget - count);
  }
}

/** True for a txn with no write in either branch, nested txns included. */
export function readOnlyTxn(t: W.WireTxnRequest): boolean {
  return [...t.success, ...t.failure].every((o) =>
    o.request_range !== undefined || (o.request_txn !== undefined && readOnlyTxn(o.request_txn))
  );
}

// Protobuf encoded sizes (proto3: default scalars are left out).

function varint(n: number): number {
  if (n < 0) return 10;
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** A length-delimited field whose tag takes `tag` bytes. */
function delimited(length: number, tag = 1): number {
  return tag + varint(length) + length;
}

const bytes = (b: Uint8Array | undefined, tag = 1) =>
  b && b.length > 0 ? delimited(b.length, tag) : 0;
const int = (n: number | undefined) => n ? 1 + varint(n) : 0;
const flag = (b: boolean | undefined) => b ? 2 : 0;
/** An enum as proto-loader names it; the first name is its zero value. */
const enumeration = (name: string | undefined, zero: string) => name && name !== zero ? 2 : 0;

function rangeSize(r: W.WireRangeRequest): number {
  return bytes(r.key) + bytes(r.range_end) + int(r.limit) + int(r.revision) +
    enumeration(r.sort_order, "NONE") + enumeration(r.sort_target, "KEY") +
    flag(r.serializable) + flag(r.keys_only) + flag(r.count_only) +
    int(r.min_mod_revision) + int(r.max_mod_revision) + int(r.min_create_revision) +
    int(r.max_create_revision);
}

/** The encoded size of a PutRequest. */
export function putSize(p: W.WirePutRequest): number {
  return bytes(p.key) + bytes(p.value) + int(p.lease) + flag(p.prev_kv) +
    flag(p.ignore_value) + flag(p.ignore_lease);
}

/** The encoded size of a DeleteRangeRequest. */
export function deleteSize(d: W.WireDeleteRangeRequest): number {
  return bytes(d.key) + bytes(d.range_end) + flag(d.prev_kv);
}

function compareSize(c: W.WireCompare): number {
  let size = enumeration(c.result, "EQUAL") + enumeration(c.target, "VERSION") + bytes(c.key) +
    bytes(c.range_end, 2);
  if (c.target_union === "value") size += delimited(c.value?.length ?? 0);
  else if (c.target_union) size += 1 + varint(Number(c[c.target_union] ?? 0));
  return size;
}

function opSize(o: W.WireRequestOp): number {
  if (o.request_range) return delimited(rangeSize(o.request_range));
  if (o.request_put) return delimited(putSize(o.request_put));
  if (o.request_delete_range) return delimited(deleteSize(o.request_delete_range));
  if (o.request_txn) return delimited(txnSize(o.request_txn));
  return 0;
}

/** The encoded size of a TxnRequest. */
export function txnSize(t: W.WireTxnRequest): number {
  let size = 0;
  for (const c of t.compare) size += delimited(compareSize(c));
  for (const o of t.success) size += delimited(opSize(o));
  for (const o of t.failure) size += delimited(opSize(o));
  return size;
}
