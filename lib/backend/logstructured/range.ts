import { compacted, futureRevision } from "../errors.ts";
import { compareKeys } from "../keys.ts";
import { FROM_KEY, type KeyValue, type RangeRequest, type RangeResult } from "../types.ts";
import { APISERVER_COMPACT_KEY, presentKv, redirectKey } from "./compact_key.ts";
import { type LogReader, rowToKv } from "./log.ts";

/** True when a Range must read every key of its range: sorted other than by key, or filtered. */
export function needsFullScan(r: RangeRequest): boolean {
  return (r.sortOrder !== "none" && !(r.sortOrder === "ascend" && r.sortTarget === "key")) ||
    r.minModRevision > 0 || r.maxModRevision > 0 || r.minCreateRevision > 0 ||
    r.maxCreateRevision > 0;
}

/** True when `kv` passes the request's revision filters. */
export function keep(r: RangeRequest, kv: KeyValue): boolean {
  return (r.minModRevision <= 0 || kv.modRevision >= r.minModRevision) &&
    (r.maxModRevision <= 0 || kv.modRevision <= r.maxModRevision) &&
    (r.minCreateRevision <= 0 || kv.createRevision >= r.minCreateRevision) &&
    (r.maxCreateRevision <= 0 || kv.createRevision <= r.maxCreateRevision);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Comparators of the sort targets. */
export const SORT_KEYS: Record<string, (a: KeyValue, b: KeyValue) => number> = {
  key: (a, b) => compareKeys(a.key, b.key),
  version: (a, b) => a.version - b.version,
  create: (a, b) => a.createRevision - b.createRevision,
  mod: (a, b) => a.modRevision - b.modRevision,
  value: (a, b) => compareBytes(a.value, b.value),
};

/**
 * etcd's Range over the log: exact key, `[key, end)` or open-ended, pinned to
 * one revision. With a limit, `count` is the number of live keys from the
 * start key at that revision, so `more` and `count` agree as kube expects.
 */
export async function rangeLog(
  log: LogReader,
  r: RangeRequest,
  knownCount?: number,
): Promise<RangeResult> {
  const { current, compact } = await log.revisions();
  let revision = current;
  if (r.revision > 0) {
    if (r.revision > current) throw futureRevision();
    if (r.revision < compact) throw compacted();
    revision = r.revision;
  }
  const start = r.end === "" ? redirectKey(r.key) : r.key;
  const end = r.end === FROM_KEY ? null : r.end;
  if (r.countOnly && !needsFullScan(r)) {
    return {
      revision: current,
      kvs: [],
      count: await log.count(start, end, revision),
      more: false,
    };
  }
  const full = needsFullScan(r);
  const fetchLimit = !full && r.limit > 0 ? r.limit + 1 : 0;
  const rows = await log.list(start, end, revision, fetchLimit, r.keysOnly && !full);
  const keysOnly = r.keysOnly && !full;
  let kvs = rows.map((row) => rowToKv(row, keysOnly));
  const apiserver = kvs.findIndex((kv) => kv.key === APISERVER_COMPACT_KEY);
  if (apiserver >= 0) {
    // Its version is kept in its value, which a keys-only read did not fetch.
    const row = keysOnly
      ? (await log.list(APISERVER_COMPACT_KEY, "", revision, 0, false))[0]
      : rows[apiserver];
    const kv = presentKv(rowToKv(row));
    kvs[apiserver] = keysOnly ? { ...kv, value: new Uint8Array(0) } : kv;
  }
  let count = kvs.length;
  let more = false;
  let nextKey: string | undefined;
  if (full) {
    kvs = kvs.filter((kv) => keep(r, kv));
    if (r.sortOrder !== "none") {
      const cmp = SORT_KEYS[r.sortTarget];
      kvs.sort(r.sortOrder === "descend" ? (a, b) => cmp(b, a) : cmp);
    }
    if (r.keysOnly) kvs = kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) }));
  }
  if (r.limit > 0 && kvs.length > r.limit) {
    kvs = kvs.slice(0, r.limit);
    more = true;
    if (!full) {
      // The stored name: the apiserver's compaction row is presented under another.
      nextKey = rows[r.limit - 1].name + "\0";
      if (!r.skipCount) count = knownCount ?? await log.count(start, end, revision);
    }
  }
  if (r.countOnly) kvs = [];
  return { revision: current, kvs, count, more, nextKey };
}
