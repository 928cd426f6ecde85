/**
 * A ranged DeleteRange on a backend whose txns write one key only (NATS):
 * the keys of the range are deleted one by one in key order, each by a
 * single-key delete, which the backend makes conditional on the key's last
 * write (a concurrent writer of the key makes it read the key again). The
 * answer counts and returns every key deleted, as on the SQL backends, where
 * each deleted row takes its own revision too. Not atomic to a concurrent
 * reader: it may see some of the keys gone and others not yet.
 *
 * @module
 */
import { type DeleteOp, type KeyValue, type MvccStore, plainRange } from "../backend/types.ts";

/** Keys listed per page of the range. */
const PAGE = 1000;

/** What a DeleteRange answers: the revision after it, the count and the deleted kvs. */
export interface RangeDeleted {
  revision: number;
  deleted: number;
  prevKvs: KeyValue[];
}

/** Deletes every key of `op`'s range one at a time, in key order. */
export async function deleteKeyByKey(backend: MvccStore, op: DeleteOp): Promise<RangeDeleted> {
  const out: RangeDeleted = { revision: 0, deleted: 0, prevKvs: [] };
  let start = op.key;
  for (;;) {
    const page = await backend.range({
      ...plainRange(start, op.end),
      limit: PAGE,
      skipCount: true,
    });
    out.revision = Math.max(out.revision, page.revision);
    for (const kv of page.kvs) {
      const t = await backend.txn({
        compare: [],
        success: [{ type: "delete", key: kv.key, end: "", prevKv: op.prevKv }],
        failure: [],
      });
      const r = t.responses[0];
      if (r?.type !== "delete" || r.deleted === 0) continue;
      out.revision = t.revision;
      out.deleted += r.deleted;
      out.prevKvs.push(...r.prevKvs);
    }
    if (!page.more || page.nextKey === undefined) return out;
    start = page.nextKey;
  }
}
