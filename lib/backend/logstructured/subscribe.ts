/**
 * Starting a watch on a log: subscribe to the live fan-out and read the
 * history from the start revision up to the published position, without a
 * gap or a duplicate between the two.
 *
 * @module
 */
import { type EventSink, FROM_KEY, type WatchResult } from "../types.ts";
import { isInternal, presentEvents, rowToEvent } from "./events.ts";
import type { Fanout } from "./fanout.ts";
import type { EventReader } from "./log.ts";
import { redirectKey } from "./compact_key.ts";

/** Where a watch starts and how its history is read. */
export interface Subscription {
  /** The compact revision: a watch from below it does not start (at it, etcd allows one). */
  compact: number;
  fanout: Fanout;
  reader: EventReader;
  /**
   * The highest revision the fan-out has published, read in the same
   * synchronous step as the call, so no batch slips in between.
   */
  position: number;
  /**
   * Where "from now" (start revision 0) starts after: the last revision
   * acknowledged to a client, which may be ahead of `position` (default `position`).
   */
  now?: number;
  /** Rows read per history query. */
  batchSize: number;
}

/**
 * Delivers `[key, end)` from `startRevision` (0 = after `now`) to `sink`:
 * history up to `position` from the reader, everything after it live. A
 * compacted start revision starts nothing and says so.
 */
export async function subscribe(
  s: Subscription,
  key: string,
  end: string,
  startRevision: number,
  sink: EventSink,
): Promise<WatchResult> {
  if (startRevision > 0 && startRevision < s.compact) {
    return { compactRevision: s.compact, cancel: () => {} };
  }
  const name = end === "" ? redirectKey(key) : key;
  const present: EventSink = (events) => sink(presentEvents(events));
  const from = startRevision > 0 ? startRevision : Math.max(s.now ?? 0, s.position) + 1;
  const sub = s.fanout.add(name, end, Math.max(from, s.position + 1), present);
  const cancel = () => s.fanout.remove(sub);
  try {
    const rangeEnd = end === FROM_KEY ? null : end;
    for (let after = from - 1; after < s.position;) {
      const rows = await s.reader.events(after, s.position, s.batchSize, name, rangeEnd);
      if (rows.length === 0) break;
      const events = rows.filter((r) => !isInternal(r)).map(rowToEvent);
      if (events.length > 0) await present(events);
      after = rows[rows.length - 1].id;
    }
  } catch (err) {
    cancel();
    throw err;
  }
  sub.release();
  return { cancel };
}
