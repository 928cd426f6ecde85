/** The direct RangeResponse encoder decodes, with the generic protobuf codec, to the same message. */
import assert from "node:assert/strict";
import type { KeyValue, RangeResult } from "../lib/backend/types.ts";
import { loadProtos } from "../lib/server/client_protos.ts";
import {
  type EncodedMessage,
  encodeRangeResponse,
  RangeEncoder,
} from "../lib/translator/range_codec.ts";
import { Buffer } from "node:buffer";
import { keyFromText, keyToBytes } from "../lib/backend/keys.ts";

const { etcd } = loadProtos();
/** Copies the message out the way grpc-js's server does (behind a 5-byte frame header), then decodes it. */
function decode(m: EncodedMessage) {
  const framed = Buffer.alloc(m.byteLength + 5);
  assert.equal(m.copy(framed, 5), m.byteLength);
  return etcd.KV.service.Range.responseDeserialize(framed.subarray(5));
}

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
    // Keys are byte strings (one code unit per byte): UTF-8 text and bytes that are not.
    kv(keyFromText("/ü/é/😀"), new TextEncoder().encode("v"), 2),
    kv(keyFromText("/€/\uE000/\u07FF/\u0800"), new Uint8Array([7]), 3),
    kv("/\0\xff\xc3(\x80", new Uint8Array([8]), 4),
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
      assert.deepEqual(new Uint8Array(got.key), keyToBytes(want.key));
      assert.deepEqual(new Uint8Array(got.value), want.value);
      assert.equal(got.create_revision, want.createRevision);
      assert.equal(got.mod_revision, want.modRevision);
      assert.equal(got.version, want.version);
      assert.equal(got.lease, want.lease);
    });
  }
});

Deno.test("RangeEncoder: pages added one by one make the same message as one result", () => {
  const kvs = Array.from({ length: 7 }, (_, i) => kv(`/p/${i}`, new Uint8Array(i * 50), i + 1));
  const whole = encodeRangeResponse({ revision: 40, kvs, count: 7, more: false }, 40);
  const encoder = new RangeEncoder();
  for (const page of [kvs.slice(0, 3), [], kvs.slice(3, 6), kvs.slice(6)]) encoder.add(page);
  const paged = encoder.finish(40, false, 7);
  assert.equal(paged.byteLength, whole.byteLength);
  const bytes = (m: EncodedMessage) => {
    const out = new Uint8Array(m.byteLength);
    m.copy(out);
    return out;
  };
  assert.deepEqual(bytes(paged), bytes(whole));
  const m = decode(paged);
  assert.deepEqual(m.kvs.map((x: any) => new TextDecoder().decode(x.key)), kvs.map((x) => x.key));
  assert.equal(m.count, 7);
});
