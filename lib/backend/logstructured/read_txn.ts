/**
 * A txn that writes nothing, answered by reads at one revision instead of a
 * store write transaction: its compares and ranges are Ranges like any
 * other, from the key index. etcd answers such a txn from its read view too.
 *
 * @module
 */
import {
  type OpResult,
  plainRange,
  type RangeRequest,
  type RangeResult,
  type Txn,
  type TxnResult,
} from "../types.ts";
import { compareHolds } from "./txn.ts";

/** A Range pinned by the caller to the txn's revision (or the one the request names). */
export type PinnedRange = (r: RangeRequest) => Promise<RangeResult>;

/**
 * Runs `txn`, which holds no put or delete (nested txns included), at
 * `revision`: every compare and range reads there, and every response
 * carries it, as one store snapshot would.
 */
export async function readTxn(txn: Txn, revision: number, range: PinnedRange): Promise<TxnResult> {
  let succeeded = true;
  for (const c of txn.compare) {
    // Only a value compare needs the values.
    const r = { ...plainRange(c.key, c.end), revision, keysOnly: c.target !== "value" };
    if (!compareHolds(c, (await range(r)).kvs)) {
      succeeded = false;
      break;
    }
  }
  const responses: OpResult[] = [];
  for (const op of succeeded ? txn.success : txn.failure) {
    if (op.type === "range") {
      const at = op.request.revision > 0 ? op.request.revision : revision;
      const result = await range({ ...op.request, revision: at });
      responses.push({ type: "range", result: { ...result, revision } });
    } else if (op.type === "txn") {
      responses.push({ type: "txn", result: await readTxn(op.txn, revision, range) });
    } else {
      throw new Error(`a read-only txn holds a ${op.type}`);
    }
  }
  return { revision, succeeded, responses };
}
