/**
 * Bulk loads (txns of plain puts) mixed with kube writes and deletes, in
 * batches, that the bulk-load tests run on two stores and compare.
 */
import { b } from "./client.ts";
import type { Txn } from "../../lib/backend/types.ts";
import { deleteOp, kubeTxn, putOp } from "../../bench/kube_txns.ts";

/** A bulk load of `keys`, each value naming the key and `tag`. */
export const load = (keys: string[], tag: string): Txn => ({
  compare: [],
  success: keys.map((k) => putOp(k, b(`${tag}:${k}`))),
  failure: [],
});

/** The txns, in batches: each batch is handed to the writer at once (one commit). */
export const BATCHES: Txn[][] = [
  [kubeTxn("/a/1", 0, putOp("/a/1", b("one"))), kubeTxn("/a/2", 0, putOp("/a/2", b("two")))],
  [kubeTxn("/a/3", 0, putOp("/a/3", b("three")))],
  // (A batch commits its bulk loads apart from its other txns: each kind in a batch of its own.)
  [{ compare: [], success: [putOp("/a/4", b("four")), putOp("/a/5", b(""))], failure: [] }],
  [{ compare: [], success: [deleteOp("/a/2")], failure: [] }],
  // New keys, live keys (one with an empty value), a deleted key, a binary key.
  [load(["/a/1", "/a/2", "/a/5", "/n/1", "/bin/\0\xff"], "first")],
  // Three loads in one commit, the later ones writing keys of the earlier ones.
  [
    load(["/a/1", "/m/1", "/m/2"], "x"),
    load(["/m/1", "/a/3", "/m/3"], "y"),
    load(["/m/1", "/m/2", "/bin/\0\xff"], "z"),
  ],
  // Loads of new keys only, several in one commit, then the same keys again.
  [load(["/p/1", "/p/2"], "p"), load(["/p/3", "/p/4"], "p"), load(["/p/5", "/p/6"], "p")],
  [load(["/p/1", "/p/2", "/p/3", "/a/4"], "p2"), load(["/p/5", "/p/7"], "p2")],
  // A load past one statement's rows, over keys that exist and keys that do not.
  [load(Array.from({ length: 300 }, (_, i) => `/big/${i % 2 ? i : 300 + i}`), "big")],
  [load(Array.from({ length: 300 }, (_, i) => `/big/${i}`), "big2")],
];
