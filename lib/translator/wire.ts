/**
 * The etcd messages as @grpc/proto-loader hands them over (keepCase, longs
 * as numbers, enums as names, bytes as Buffer, defaults filled in).
 */
export type Bytes = Uint8Array;

export interface WireHeader {
  revision: number;
}

export interface WireKeyValue {
  key: Bytes;
  create_revision: number;
  mod_revision: number;
  version: number;
  value: Bytes;
  lease: number;
}

export interface WireRangeRequest {
  key: Bytes;
  range_end: Bytes;
  limit: number;
  revision: number;
  sort_order: "NONE" | "ASCEND" | "DESCEND";
  sort_target: "KEY" | "VERSION" | "CREATE" | "MOD" | "VALUE";
  serializable: boolean;
  keys_only: boolean;
  count_only: boolean;
  min_mod_revision: number;
  max_mod_revision: number;
  min_create_revision: number;
  max_create_revision: number;
}

export interface WireRangeResponse {
  header: WireHeader;
  kvs: WireKeyValue[];
  more: boolean;
  count: number;
}

export interface WirePutRequest {
  key: Bytes;
  value: Bytes;
  lease: number;
  prev_kv: boolean;
  ignore_value: boolean;
  ignore_lease: boolean;
}

export interface WirePutResponse {
  header: WireHeader;
  prev_kv?: WireKeyValue;
}

export interface WireDeleteRangeRequest {
  key: Bytes;
  range_end: Bytes;
  prev_kv: boolean;
}

export interface WireDeleteRangeResponse {
  header: WireHeader;
  deleted: number;
  prev_kvs: WireKeyValue[];
}

export interface WireRequestOp {
  request?: "request_range" | "request_put" | "request_delete_range" | "request_txn";
  request_range?: WireRangeRequest;
  request_put?: WirePutRequest;
  request_delete_range?: WireDeleteRangeRequest;
  request_txn?: WireTxnRequest;
}

export interface WireResponseOp {
  response_range?: WireRangeResponse;
  response_put?: WirePutResponse;
  response_delete_range?: WireDeleteRangeResponse;
  response_txn?: WireTxnResponse;
}

export interface WireCompare {
  result: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL";
  target: "VERSION" | "CREATE" | "MOD" | "VALUE" | "LEASE";
  key: Bytes;
  target_union?: "version" | "create_revision" | "mod_revision" | "value" | "lease";
  version?: number;
  create_revision?: number;
  mod_revision?: number;
  value?: Bytes;
  lease?: number;
  range_end: Bytes;
}

export interface WireTxnRequest {
  compare: WireCompare[];
  success: WireRequestOp[];
  failure: WireRequestOp[];
}

export interface WireTxnResponse {
  header: WireHeader;
  succeeded: boolean;
  responses: WireResponseOp[];
}

export interface WireCompactionRequest {
  revision: number;
  physical: boolean;
}
