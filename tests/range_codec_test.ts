/** The direct RangeResponse encoder decodes, with the generic protobuf codec, to the same message. */
import assert from "node:assert/strict";
import type { KeyValue, RangeResult } from "../lib/backend/types.ts";
import { loadProtos } from "../lib/server/proto.ts";
import { encodeRangeResponse } from "../lib/translator/range_codec.ts";
import { Buffer } from "node:buffer";

const { etcd } = loadProtos();
const decode = (b: Uint8Array) =>
  etcd.KV.service.Range.responseDeserialize(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function kv(key: string, value: Uint8Array, n: number): KeyValue {
  return {
    key,
    value,
    createRevision: n,
    modRevision: n * 3,
    version: n % 7,
    lease: n > 2 ? 2 ** 52 + n : 0,
  };
}

Deno.test("encodeRangeResponse matches the protobuf schema for every field and size", () => {
  const big = new Uint8Array(300_000).map((_, i) => i % 251);
  const kvs = [
    kv("/a", new Uint8Array(0), 1),
    kv("/ü/é/😀", new TextEncoder().encode("v"), 2),
    kv("/€/\uE000/\u07FF/\u0800", new Uint8Array([7]), 3),
    kv("/big", big, 2 ** 40),
    kv("/z", new Uint8Array([0, 255]), 127),
    kv("/y", new Uint8Array([1]), 128),
  ];
  const cases: [RangeResult, number][] = [
    [{ revision: 0, kvs: [], count: 0, more: false }, 0],
    [{ revision: 9, kvs, count: 12, more: true }, 2 ** 45 + 3],
    [{ revision: 9, kvs: kvs.slice(0, 1), count: 1, more: false }, 300],
  ];
  for (const [result, revision] of cases) {
    const m = decode(encodeRangeResponse(result, revision));
    assert.equal(m.header.revision, revision);
    assert.equal(m.more, result.more);
    assert.equal(m.count, result.count);
    assert.equal(m.kvs.length, result.kvs.length);
    m.kvs.forEach((got: any, i: number) => {
      const want = result.kvs[i];
      assert.equal(new TextDecoder().decode(got.key), want.key);
      assert.deepEqual(new Uint8Array(got.value), want.value);
      assert.equal(got.create_revision, want.createRevision);
      assert.equal(got.mod_revision, want.modRevision);
      assert.equal(got.version, want.version);
      assert.equal(got.lease, want.lease);
    });
  }
});
