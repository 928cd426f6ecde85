/**
 * A ranged DeleteRange on NATS, whose writes are single-key conditional
 * publishes: a page of the range's live keys is read from the index in one
 * synchronous step, and each key's tombstone is published with JetStream's
 * expected last sequence of its key as that step read it, a window of them in
 * flight on one connection, so they land in key order at consecutive
 * revisions. A key another writer changed in between refuses its tombstone
 * (wrong last sequence); it is deleted again alone, as a single-key txn that
 * reads it afresh. So each key is deleted only if it is live when its
 * tombstone lands, and every deletion is one event; the range as a whole is
 * not atomic: a concurrent reader may see some keys gone and others not yet,
 * and a failure part way leaves the keys before it deleted.
 *
 * @module
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { presentKv } from "../logstructured/compact_key.ts";
import type { LogRow } from "../logstructured/log.ts";
import { rowToKv } from "../logstructured/log.ts";
import { type DeleteOp, FROM_KEY, type RangeDeleted, type TxnResult } from "../types.ts";
import { Acks } from "./acks.ts";
import { encodeRecord } from "./codec.ts";
import type { Replica } from "./replica.ts";

/** Keys read from the index per page. */
const PAGE = 1000;
/** Tombstones in flight at once. */
const WINDOW = 256;
const ACK_TIMEOUT_MS = 10_000;
/** JetStream's error code for a conditional publish whose key moved on. */
const WRONG_LAST_SEQUENCE = 10071;
const EMPTY = new Uint8Array(0);

/** What the ranged delete needs of the backend. */
export interface DeleteContext {
  nc: NatsConnection;
  replica: Replica;
  /** The subject of a key's messages. */
  subject(key: string): string;
  /** Runs a single-key txn (the backend's own, with its retries). */
  txn(op: DeleteOp): Promise<TxnResult>;
  /** Waits until the index has applied `seq`, as a write's read-your-writes does. */
  sync(seq: number): Promise<void>;
}

/** Deletes every live key of `op`'s range, in key order, a page at a time. */
export async function deleteRange(c: DeleteContext, op: DeleteOp): Promise<RangeDeleted> {
  const out: RangeDeleted = { revision: c.replica.applied, deleted: 0, prevKvs: [] };
  const end = op.end === FROM_KEY ? null : op.end;
  for (let start = op.key;;) {
    const rows = c.replica.list(start, end, c.replica.applied, PAGE, !op.prevKv);
    const landed = await publishPage(c, rows);
    // In key order, as etcd answers: a key that moved on is deleted afresh in its place.
    for (let i = 0; i < rows.length; i++) {
      if (landed[i] > 0) {
        out.revision = Math.max(out.revision, landed[i]);
        out.deleted++;
        if (op.prevKv) out.prevKvs.push(presentKv(rowToKv(rows[i])));
        continue;
      }
      const t = await c.txn({ type: "delete", key: rows[i].name, end: "", prevKv: op.prevKv });
      const r = t.responses[0];
      if (r?.type !== "delete" || r.deleted === 0) continue;
      out.revision = Math.max(out.revision, t.revision);
      out.deleted += r.deleted;
      out.prevKvs.push(...r.prevKvs);
    }
    if (rows.length < PAGE) return out;
    start = rows[rows.length - 1].name + "\0";
  }
}

/**
 * Publishes the tombstones of `rows` (live rows of the index); returns the
 * revision each landed at, 0 for a key that another writer moved on first.
 */
async function publishPage(c: DeleteContext, rows: LogRow[]): Promise<number[]> {
  const landed: number[] = new Array(rows.length).fill(0);
  const acks = new Acks(c.nc, WINDOW, ACK_TIMEOUT_MS, (i, seq, refusal) => {
    if (refusal) return refusal.err_code === WRONG_LAST_SEQUENCE;
    landed[i] = seq;
  });
  try {
    for (const row of rows) {
      // Only a full window waits (see Acks.room): an await per publish would flush each alone.
      if (acks.full) await acks.room();
      const h = headers();
      h.set("Nats-Expected-Last-Subject-Sequence", String(c.replica.lastSeq(row.name)));
      c.nc.publish(c.subject(row.name), tombstone(row), {
        reply: acks.next(),
        headers: h,
      });
    }
    await acks.all();
  } finally {
    acks.close();
    // What landed before a failure is deleted: the index shows it before the error is answered.
    const top = landed.reduce((a, b) => Math.max(a, b), 0);
    if (top > 0) await c.sync(top);
  }
  return landed;
}

/** The record that deletes a live row, as the txn logic's delete writes it. */
function tombstone(row: LogRow): Uint8Array {
  return encodeRecord({
    created: false,
    deleted: true,
    createRevision: 0,
    prevRevision: row.id,
    lease: 0,
    value: EMPTY,
    version: row.version + 1,
  });
}
