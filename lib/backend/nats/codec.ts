/**
 * The value of a KV record: one row of kine's revision log. The first byte is
 * the codec version, so records of later versions (and upstream kine's, whose
 * S2 stream starts with 0xff) can coexist with these and be told apart.
 *
 * Version 1: `[1][flags][createRevision f64][prevRevision f64][lease f64][version f64][value…]`,
 * flags bit 0 = created, bit 1 = deleted; numbers little-endian. The record's
 * own revision is its stream sequence, which is not stored.
 *
 * @module
 */
import type { NewRow } from "../logstructured/log.ts";

/** What a record holds: a log row without its name (the subject) and id (the sequence). */
export type Record = Omit<NewRow, "name" | "value"> & { value: Uint8Array };

const V1 = 1;
const HEADER = 2 + 4 * 8;
/** First byte of an S2 stream (upstream kine's compressed JSON). */
const S2_STREAM = 0xff;

export function encodeRecord(r: Record): Uint8Array {
  const out = new Uint8Array(HEADER + r.value.length);
  const view = new DataView(out.buffer);
  out[0] = V1;
  out[1] = (r.created ? 1 : 0) | (r.deleted ? 2 : 0);
  view.setFloat64(2, r.createRevision, true);
  view.setFloat64(10, r.prevRevision, true);
  view.setFloat64(18, r.lease, true);
  view.setFloat64(26, r.version, true);
  out.set(r.value, HEADER);
  return out;
}

/** Why a record could not be read. */
export class RecordError extends Error {}

export function decodeRecord(data: Uint8Array): Record {
  if (data.length >= HEADER && data[0] === V1) {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return {
      created: (data[1] & 1) !== 0,
      deleted: (data[1] & 2) !== 0,
      createRevision: view.getFloat64(2, true),
      prevRevision: view.getFloat64(10, true),
      lease: view.getFloat64(18, true),
      version: view.getFloat64(26, true),
      value: data.subarray(HEADER),
    };
  }
  if (data.length > 0 && data[0] === S2_STREAM) {
    throw new RecordError("record written by upstream kine (S2-compressed JSON) is not readable");
  }
  throw new RecordError(`unknown record codec version ${data[0] ?? "(empty)"}`);
}
