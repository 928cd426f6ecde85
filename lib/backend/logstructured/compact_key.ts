/**
 * kube-apiserver keeps its compaction bookkeeping in the etcd key
 * `compact_rev_key`, whose *version* it compares. Kine owns a row of that name
 * (its `prev_revision` holds the compact revision), so the apiserver's copy
 * lives in `compact_rev_key_apiserver` as `"<version>|<payload>"`.
 */
import type { KeyValue } from "../types.ts";
import type { NewRow } from "./log.ts";

export const COMPACT_KEY = "compact_rev_key";
export const APISERVER_COMPACT_KEY = "compact_rev_key_apiserver";

/**
 * The bookkeeping row a backend's start appends to a store that has none: the
 * compact revision is its prev_revision, 0 until the first compaction.
 */
export function compactKeyRow(): NewRow {
  return {
    name: COMPACT_KEY,
    created: true,
    deleted: false,
    createRevision: 0,
    prevRevision: 0,
    lease: 0,
    value: new Uint8Array(0),
    version: 0,
  };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PIPE = 0x7c;

/** Clients address `compact_rev_key`; storage uses the apiserver row. */
export function redirectKey(key: string): string {
  return key === COMPACT_KEY ? APISERVER_COMPACT_KEY : key;
}

/** Splits a stored value; legacy values hold only a number (the version). */
export function decodeCompactValue(value: Uint8Array): { version: number; payload: Uint8Array } {
  const pipe = value.indexOf(PIPE);
  if (pipe < 0) {
    return { version: Number(decoder.decode(value)) || 0, payload: encoder.encode("0") };
  }
  return {
    version: Number(decoder.decode(value.subarray(0, pipe))) || 0,
    payload: value.slice(pipe + 1),
  };
}

export function encodeCompactValue(version: number, payload: Uint8Array): Uint8Array {
  const head = encoder.encode(`${version}|`);
  const out = new Uint8Array(head.length + payload.length);
  out.set(head);
  out.set(payload, head.length);
  return out;
}

/** Presents the apiserver row under the name the apiserver used. */
export function presentKv(kv: KeyValue): KeyValue {
  if (kv.key !== APISERVER_COMPACT_KEY) return kv;
  const { version, payload } = decodeCompactValue(kv.value);
  return { ...kv, key: COMPACT_KEY, version, value: payload };
}
