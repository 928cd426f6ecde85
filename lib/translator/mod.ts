/**
 * The transaction translator: etcd requests as they arrive off the wire become
 * plain backend calls, and backend results become etcd responses.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { COMPACT_KEY } from "../backend/logstructured/compact_key.ts";
import type {
  Backend,
  Compare,
  DeleteOp,
  KeyValue,
  Op,
  OpResult,
  RangeRequest,
  RangeResult,
  Txn,
  TxnResult,
} from "../backend/types.ts";
import { BackendError, compacted, futureRevision } from "../backend/errors.ts";
import { isSingleKeyTxn, multiKeyUnsupported } from "../backend/logstructured/txn.ts";
import {
  Code,
  emptyKey,
  emptyOp,
  EtcdError,
  leaseProvided,
  toEtcdError,
  valueProvided,
} from "./errors.ts";
import {
  checkTxnOps,
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  deleteSize,
  putSize,
  readOnlyTxn,
  type RequestLimits,
  requestTooLarge,
  txnSize,
} from "./limits.ts";
import { putCost, txnCost, type WriteGate } from "../alarm/cost.ts";
import { keyRange as textRange, keyText } from "./keys.ts";
import { keyToBytes } from "../backend/keys.ts";
import { type EncodedMessage, encodeRangeResponse, RangeEncoder } from "./range_codec.ts";
import { keyOrdered, rangeStream } from "./range_stream.ts";
import type * as W from "./wire.ts";

export * from "./errors.ts";
export { compareBytes, keyRange, keyText } from "./keys.ts";
export type * from "./wire.ts";
export type { EncodedMessage } from "./range_codec.ts";
export {
  DEFAULT_MAX_REQUEST_BYTES,
  DEFAULT_MAX_TXN_OPS,
  type RequestLimits,
  requestTooLarge,
  tooManyOps,
} from "./limits.ts";

/**
 * An unlimited list in key order is read and encoded this many keys at a
 * time, so a large one never holds every key's row and value at once.
 */
const LIST_PAGE = 1000;

/** True for a list with no limit whose keys come in key order. */
function pageable(r: RangeRequest): boolean {
  return r.limit === 0 && keyOrdered(r);
}

/** A request's key and range end (see keys.ts). */
function keyRange(keyBytes: Uint8Array | undefined, endBytes: Uint8Array | undefined) {
  if (!keyBytes || keyBytes.length === 0) throw emptyKey();
  return textRange(keyBytes, endBytes);
}

function key(b: Uint8Array | undefined): string {
  const k = keyText(b);
  if (k === "") throw emptyKey();
  return k;
}

const SORT_ORDER = { NONE: "none", ASCEND: "ascend", DESCEND: "descend" } as const;
const SORT_TARGET = {
  KEY: "key",
  VERSION: "version",
  CREATE: "create",
  MOD: "mod",
  VALUE: "value",
} as const;
const TARGET = {
  VERSION: "version",
  CREATE: "create",
  MOD: "mod",
  VALUE: "value",
  LEASE: "lease",
} as const;
const RESULT = {
  EQUAL: "equal",
  GREATER: "greater",
  LESS: "less",
  NOT_EQUAL: "not_equal",
} as const;

export function rangeRequest(r: W.WireRangeRequest): RangeRequest {
  return {
    ...keyRange(r.key, r.range_end),
    limit: r.limit > 0 ? r.limit : 0,
    revision: r.revision,
    keysOnly: r.keys_only,
    countOnly: r.count_only,
    sortOrder: SORT_ORDER[r.sort_order] ?? "none",
    sortTarget: SORT_TARGET[r.sort_target] ?? "key",
    minModRevision: r.min_mod_revision,
    maxModRevision: r.max_mod_revision,
    minCreateRevision: r.min_create_revision,
    maxCreateRevision: r.max_create_revision,
    serializable: r.serializable,
  };
}

function compare(c: W.WireCompare): Compare {
  const target = TARGET[c.target] ?? "version";
  const operand = target === "value"
    ? (c.value ?? new Uint8Array(0))
    : Number(c.target_union ? c[c.target_union] ?? 0 : 0);
  return { ...keyRange(c.key, c.range_end), target, result: RESULT[c.result], operand };
}

function op(o: W.WireRequestOp): Op {
  if (o.request_put) {
    const p = o.request_put;
    const k = key(p.key);
    // etcd's order: the key, then these two, before anything else of the request.
    if (p.ignore_value && p.value?.length) throw valueProvided();
    if (p.ignore_lease && p.lease !== 0) throw leaseProvided();
    return {
      type: "put",
      key: k,
      value: p.value ?? new Uint8Array(0),
      lease: p.lease,
      prevKv: p.prev_kv,
      ignoreValue: p.ignore_value,
      ignoreLease: p.ignore_lease,
    };
  }
  if (o.request_delete_range) {
    const d = o.request_delete_range;
    return { type: "delete", ...keyRange(d.key, d.range_end), prevKv: d.prev_kv };
  }
  if (o.request_txn) return { type: "txn", txn: toTxn(o.request_txn) };
  if (o.request_range) return { type: "range", request: rangeRequest(o.request_range) };
  throw emptyOp();
}

/** A TxnRequest as a backend {@link Txn}; `maxOps` is etcd's `--max-txn-ops`. */
export function txnRequest(t: W.WireTxnRequest, maxOps = DEFAULT_MAX_TXN_OPS): Txn {
  checkTxnOps(t, maxOps);
  return toTxn(t);
}

function toTxn(t: W.WireTxnRequest): Txn {
  return {
    compare: t.compare.map(compare),
    success: t.success.map(op),
    failure: t.failure.map(op),
  };
}

export function wireKv(kv: KeyValue): W.WireKeyValue {
  return {
    key: keyToBytes(kv.key),
    create_revision: kv.createRevision,
    mod_revision: kv.modRevision,
    version: kv.version,
    value: kv.value,
    lease: kv.lease,
  };
}

function wireRange(r: RangeResult, revision: number): W.WireRangeResponse {
  return { header: { revision }, kvs: r.kvs.map(wireKv), more: r.more, count: r.count };
}

function wireOp(r: OpResult, revision: number): W.WireResponseOp {
  switch (r.type) {
    case "range":
      return { response_range: wireRange(r.result, revision) };
    case "put":
      return {
        response_put: { header: { revision }, prev_kv: r.prevKv ? wireKv(r.prevKv) : undefined },
      };
    case "delete":
      return {
        response_delete_range: {
          header: { revision },
          deleted: r.deleted,
          prev_kvs: r.prevKvs.map(wireKv),
        },
      };
    case "txn":
      return { response_txn: wireTxn(r.result, revision) };
  }
}

/** Every response of one txn carries the txn's revision, as etcd's do. */
function wireTxn(t: TxnResult, revision = t.revision): W.WireTxnResponse {
  return {
    header: { revision },
    succeeded: t.succeeded,
    responses: t.responses.map((r) => wireOp(r, revision)),
  };
}

/**
 * kube-apiserver's compaction txn:
 * `If(Version(compact_rev_key) == V) Then(Put(compact_rev_key)) Else(Get(compact_rev_key))`.
 */
function isCompactTxn(t: Txn): boolean {
  return t.compare.length === 1 && t.compare[0].key === COMPACT_KEY &&
    t.compare[0].end === "" && t.compare[0].target === "version" &&
    t.compare[0].result === "equal" && t.success.length === 1 &&
    t.success[0].type === "put" && t.failure.length === 1 && t.failure[0].type === "range";
}

/**
 * kine's answer to the compaction txn: success carries no responses; failure
 * carries the stored version and payload with an empty header and no revisions.
 */
function wireCompactTxn(t: TxnResult): W.WireTxnResponse {
  if (t.succeeded) return { header: { revision: t.revision }, succeeded: true, responses: [] };
  const failed = t.responses[0];
  const kv = failed?.type === "range" ? failed.result.kvs[0] : undefined;
  return {
    header: { revision: t.revision },
    succeeded: false,
    responses: [{
      response_range: {
        header: { revision: 0 },
        kvs: [{
          key: keyToBytes(COMPACT_KEY),
          create_revision: 0,
          mod_revision: 0,
          version: kv?.version ?? 0,
          value: kv?.value ?? new Uint8Array(0),
          lease: 0,
        }],
        more: false,
        count: 1,
      },
    }],
  };
}

/** Translates the KV service onto a {@link Backend}. */
export class Translator {
  constructor(
    readonly backend: Backend,
    private readonly options: {
      autoCompaction: boolean;
      /** True if a lease ID may be attached to a key (it may ask the store). */
      leaseExists: (id: number) => Promise<boolean>;
      limits?: RequestLimits;
      /** Alarms and the space quota (lib/alarm): may refuse a write before it runs. */
      gate?: WriteGate;
    },
  ) {}

  #gate(cost: number): void {
    this.options.gate?.(cost);
  }

  get #limits(): RequestLimits {
    return this.options.limits ??
      { maxTxnOps: DEFAULT_MAX_TXN_OPS, maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES };
  }

  /** etcd's `--max-request-bytes`, on the request as encoded. */
  #checkSize(bytes: number): void {
    if (bytes > this.#limits.maxRequestBytes) throw requestTooLarge();
  }

  /** etcd refuses puts that name a lease it does not know. */
  async #checkLeases(ops: Op[]): Promise<void> {
    for (const o of ops) {
      if (
        o.type === "put" && o.lease !== 0 && !o.ignoreLease &&
        !await this.options.leaseExists(o.lease)
      ) {
        throw new EtcdError(Code.NOT_FOUND, "etcdserver: requested lease not found");
      }
      if (o.type === "txn") {
        await this.#checkLeases(o.txn.success);
        await this.#checkLeases(o.txn.failure);
      }
    }
  }

  async #txn(txn: Txn): Promise<TxnResult> {
    await this.#checkLeases(txn.success);
    await this.#checkLeases(txn.failure);
    const caps = this.backend.capabilities;
    if (caps && !caps.multiKeyTxn && !isSingleKeyTxn(txn)) {
      throw toEtcdError(multiKeyUnsupported(caps.name));
    }
    return await this.backend.txn(txn);
  }

  /** A Range, answered with the encoded RangeResponse (see range_codec.ts). */
  async range(r: W.WireRangeRequest): Promise<EncodedMessage> {
    const request = rangeRequest(r);
    if (pageable(request)) {
      try {
        return await this.#rangeInPages(request);
      } catch (err) {
        // Compacted between pages (the first page would have said so): read it in one go.
        if (!(err instanceof BackendError && err.kind === "compacted") || request.revision > 0) {
          throw err;
        }
      }
    }
    const result = await this.backend.range(request);
    return encodeRangeResponse(result, result.revision);
  }

  /** A RangeStream's encoded chunks (see range_stream.ts); errors come from the first `next()`. */
  async *rangeStream(r: W.WireRangeRequest): AsyncGenerator<EncodedMessage> {
    yield* rangeStream(this.backend, rangeRequest(r));
  }

  /** An unlimited list as pages at the first page's revision, each encoded as it arrives. */
  async #rangeInPages(request: RangeRequest): Promise<EncodedMessage> {
    const encoder = new RangeEncoder();
    let page = await this.backend.range({ ...request, limit: LIST_PAGE, skipCount: true });
    const header = page.revision;
    const pinned = request.revision > 0 ? request.revision : header;
    let count = 0;
    for (;;) {
      encoder.add(page.kvs);
      count += page.kvs.length;
      if (!page.more || page.nextKey === undefined) break;
      // SQLite answers synchronously: let other requests in between pages.
      await new Promise((resolve) => setImmediate(resolve));
      page = await this.backend.range({
        ...request,
        key: page.nextKey,
        revision: pinned,
        limit: LIST_PAGE,
        skipCount: true,
        // The first page was linearized; the rest read at its revision.
        serializable: true,
      });
    }
    return encoder.finish(header, false, count);
  }

  async put(p: W.WirePutRequest): Promise<W.WirePutResponse> {
    this.#checkSize(putSize(p));
    this.#gate(putCost(p));
    const t = await this.#txn({
      compare: [],
      success: [op({ request_put: p })],
      failure: [],
    });
    const r = t.responses[0];
    return {
      header: { revision: t.revision },
      prev_kv: r.type === "put" && r.prevKv ? wireKv(r.prevKv) : undefined,
    };
  }

  async deleteRange(d: W.WireDeleteRangeRequest): Promise<W.WireDeleteRangeResponse> {
    this.#checkSize(deleteSize(d));
    this.#gate(0);
    const del = op({ request_delete_range: d }) as DeleteOp;
    if (del.end !== "" && this.backend.deleteRange) {
      const r = await this.backend.deleteRange(del);
      return {
        header: { revision: r.revision },
        deleted: r.deleted,
        prev_kvs: r.prevKvs.map(wireKv),
      };
    }
    const t = await this.#txn({ compare: [], success: [del], failure: [] });
    return wireOp(t.responses[0], t.revision).response_delete_range!;
  }

  async txn(w: W.WireTxnRequest): Promise<W.WireTxnResponse> {
    const txn = txnRequest(w, this.#limits.maxTxnOps);
    if (!readOnlyTxn(w)) {
      this.#checkSize(txnSize(w));
      this.#gate(txnCost(w));
    }
    const result = await this.#txn(txn);
    return isCompactTxn(txn) ? wireCompactTxn(result) : wireTxn(result);
  }

  async compact(c: W.WireCompactionRequest): Promise<{ header: W.WireHeader }> {
    this.#gate(0);
    if (!this.options.autoCompaction) {
      return { header: { revision: await this.backend.compact(c.revision) } };
    }
    // The automatic compactor owns compaction; the request is only validated.
    const status = await this.backend.status();
    if (c.revision > status.revision) throw futureRevision();
    if (c.revision <= status.compactRevision) throw compacted();
    return { header: { revision: status.revision } };
  }
}
