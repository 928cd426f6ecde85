/**
 * Log rows as a PostgreSQL binary COPY stream (`COPY … FROM STDIN WITH
 * (FORMAT binary)`), for kine migrate's PostgreSQL target: values travel as
 * their raw bytes, where a bytea parameter of an INSERT is sent (and parsed)
 * as hex text, and the server skips the planner and per-statement overhead.
 *
 * The stream: a signature, flags and header extension; per row the field
 * count, then each field as its length (-1 for NULL) and its bytes in network
 * order; a trailer of -1. Types must match the columns exactly: `created` and
 * `deleted` are INTEGER, the revisions, lease and version BIGINT, the name
 * text (UTF-8, the database's encoding) and the values bytea.
 *
 * @module
 */
import type { LogRecord } from "../types.ts";

/** The columns the stream carries, in its field order. */
export const COPY_COLUMNS = "id, name, created, deleted, create_revision, prev_revision, lease, " +
  "value, old_value, version";

const SIGNATURE = [0x50, 0x47, 0x43, 0x4f, 0x50, 0x59, 0x0a, 0xff, 0x0d, 0x0a, 0x00];
const FIELDS = 10;
/** Per row: the field count, ten lengths, six BIGINTs and two INTEGERs. */
const ROW_FIXED = 2 + FIELDS * 4 + 6 * 8 + 2 * 4;
const HEADER = SIGNATURE.length + 8;
const enc = new TextEncoder();

/** The whole binary COPY stream of `rows`. */
export function copyStream(rows: LogRecord[]): Uint8Array {
  let size = HEADER + 2;
  // A UTF-16 code unit takes at most 3 UTF-8 bytes.
  for (const r of rows) {
    size += ROW_FIXED + r.name.length * 3 + (r.value?.length ?? 0) + (r.oldValue?.length ?? 0);
  }
  const buf = new Uint8Array(size);
  const view = new DataView(buf.buffer);
  buf.set(SIGNATURE);
  // Flags and header extension length: both 0.
  let o = HEADER;
  const bigint = (v: number) => {
    view.setInt32(o, 8);
    view.setBigInt64(o + 4, BigInt(v));
    o += 12;
  };
  const int = (v: number) => {
    view.setInt32(o, 4);
    view.setInt32(o + 4, v);
    o += 8;
  };
  const bytes = (v: Uint8Array | null) => {
    if (v === null) {
      view.setInt32(o, -1);
      o += 4;
      return;
    }
    view.setInt32(o, v.length);
    buf.set(v, o + 4);
    o += 4 + v.length;
  };
  for (const r of rows) {
    view.setInt16(o, FIELDS);
    o += 2;
    bigint(r.id);
    const { written } = enc.encodeInto(r.name, buf.subarray(o + 4));
    view.setInt32(o, written);
    o += 4 + written;
    int(r.created ? 1 : 0);
    int(r.deleted ? 1 : 0);
    bigint(r.createRevision);
    bigint(r.prevRevision);
    bigint(r.lease);
    bytes(r.value);
    bytes(r.oldValue);
    bigint(r.version);
  }
  view.setInt16(o, -1);
  return buf.subarray(0, o + 2);
}
