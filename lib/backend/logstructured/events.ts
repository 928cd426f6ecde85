import type { Event, KeyValue, LogRecord } from "../types.ts";
import { APISERVER_COMPACT_KEY, COMPACT_KEY, presentKv } from "./compact_key.ts";
import type { EventRow, LogRow } from "./log.ts";

const EMPTY = new Uint8Array(0);

/** The tombstone that fills a missing id (`gap-<id>`): a row no watcher sees. */
export function gapRecord(id: number): LogRecord {
  return {
    id,
    name: `gap-${id}`,
    created: false,
    deleted: true,
    createRevision: 0,
    prevRevision: 0,
    lease: 0,
    value: null,
    oldValue: null,
    version: 0,
  };
}

/** Internal rows no watcher sees: the compaction bookkeeping row and gap fills. */
export function isInternal(row: Pick<LogRow, "name" | "deleted" | "prevRevision">): boolean {
  return row.name === COMPACT_KEY || (row.deleted && row.prevRevision === 0);
}

/**
 * The etcd event a row stands for. A delete row's `version` counts the rows of
 * the key up to and including the tombstone, so the deleted value's version is
 * one less.
 */
export function rowToEvent(row: EventRow): Event {
  if (row.created) {
    return {
      type: "put",
      kv: {
        key: row.name,
        value: row.value,
        createRevision: row.id,
        modRevision: row.id,
        version: row.version,
        lease: row.lease,
      },
    };
  }
  const prevKv: KeyValue = {
    key: row.name,
    value: row.oldValue,
    createRevision: row.deleted ? row.prevCreateRevision : row.createRevision,
    modRevision: row.prevRevision,
    // At least 1: it existed; compaction may have removed the rows that counted it.
    version: Math.max(row.version - 1, 1),
    lease: row.prevLease,
  };
  if (row.deleted) {
    return {
      type: "delete",
      kv: {
        key: row.name,
        value: EMPTY,
        createRevision: 0,
        modRevision: row.id,
        version: 0,
        lease: 0,
      },
      prevKv,
    };
  }
  return {
    type: "put",
    kv: {
      key: row.name,
      value: row.value,
      createRevision: row.createRevision,
      modRevision: row.id,
      version: row.version,
      lease: row.lease,
    },
    prevKv,
  };
}

/** Renames the apiserver's compaction row in a batch (rarely present, so usually a no-op). */
export function presentEvents(events: Event[]): Event[] {
  if (!events.some((e) => e.kv.key === APISERVER_COMPACT_KEY)) return events;
  return events.map((e) =>
    e.kv.key === APISERVER_COMPACT_KEY
      ? { ...e, kv: presentKv(e.kv), prevKv: e.prevKv && presentKv(e.prevKv) }
      : e
  );
}
