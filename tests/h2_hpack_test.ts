/** HPACK and Huffman of lib/server/h2 against RFC 7541's examples, plus its limits. */
import assert from "node:assert/strict";
import { huffmanDecode, huffmanEncode, huffmanLength } from "../lib/server/h2/huffman.ts";
import {
  encodeHeaders,
  HeaderListTooLarge,
  HpackDecoder,
  HpackError,
} from "../lib/server/h2/hpack.ts";

const hex = (s: string) =>
  Uint8Array.from(s.replace(/\s/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const text = new TextEncoder();

function huff(s: string): Uint8Array {
  const raw = text.encode(s);
  const out = new Uint8Array(huffmanLength(raw));
  assert.equal(huffmanEncode(raw, out, 0), out.length);
  return out;
}

Deno.test("huffman: RFC 7541 C.4 strings encode and decode", () => {
  const vectors: [string, string][] = [
    ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
    ["no-cache", "a8eb 1064 9cbf"],
    ["custom-key", "25a8 49e9 5ba9 7d7f"],
    ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
  ];
  for (const [s, h] of vectors) {
    assert.deepEqual(huff(s), hex(h), s);
    assert.equal(new TextDecoder().decode(huffmanDecode(hex(h))), s);
  }
});

Deno.test("huffman: every byte value round-trips; bad padding and EOS are refused", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const enc = new Uint8Array(huffmanLength(all));
  huffmanEncode(all, enc, 0);
  assert.deepEqual(huffmanDecode(enc), all);
  for (let n = 0; n < 200; n++) {
    const r = Uint8Array.from({ length: n % 40 }, () => Math.floor(Math.random() * 256));
    const e = new Uint8Array(huffmanLength(r));
    huffmanEncode(r, e, 0);
    assert.deepEqual(huffmanDecode(e), r);
  }
  // "0" is 00000 (5 bits); padding with zeros instead of ones is an error.
  assert.throws(() => huffmanDecode(Uint8Array.of(0x00)));
  // A whole byte of padding (more than 7 bits) is an error.
  assert.throws(() => huffmanDecode(Uint8Array.of(0x07, 0xff)));
  // EOS (30 ones) inside the string.
  assert.throws(() => huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xfc)));
});

Deno.test("hpack: RFC 7541 C.4 request sequence with the dynamic table", () => {
  const d = new HpackDecoder();
  assert.deepEqual(d.decode(hex("8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"), 1 << 16), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
  ]);
  assert.deepEqual(d.decode(hex("8286 84be 5886 a8eb 1064 9cbf"), 1 << 16), [
    [":method", "GET"],
    [":scheme", "http"],
    [":path", "/"],
    [":authority", "www.example.com"],
    ["cache-control", "no-cache"],
  ]);
  assert.deepEqual(
    d.decode(hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"), 1 << 16),
    [
      [":method", "GET"],
      [":scheme", "https"],
      [":path", "/index.html"],
      [":authority", "www.example.com"],
      ["custom-key", "custom-value"],
    ],
  );
});

Deno.test("hpack: size updates, eviction and malformed blocks", () => {
  const d = new HpackDecoder(4096);
  // Literal with incremental indexing, new name: custom-key: custom-header (C.2.1).
  const lit = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
  d.decode(lit, 1 << 16);
  assert.deepEqual(d.decode(Uint8Array.of(0xbe), 1 << 16), [["custom-key", "custom-header"]]);
  // Size update to 0 evicts everything: index 62 is gone.
  d.decode(Uint8Array.of(0x20), 1 << 16);
  assert.throws(() => d.decode(Uint8Array.of(0xbe), 1 << 16), HpackError);
  // An update above the announced limit, or after a field, is an error.
  assert.throws(() => new HpackDecoder(4096).decode(hex("3fe2 1f"), 1 << 16), HpackError);
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0x82, 0x20), 1 << 16), HpackError);
  // Truncated integer and string, index 0.
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0xff), 1 << 16), HpackError);
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0x40, 0x05, 0x61), 1 << 16));
  assert.throws(() => new HpackDecoder().decode(Uint8Array.of(0x80), 1 << 16), HpackError);
});

Deno.test("hpack: a bomb of references to one large entry stops at the list limit", () => {
  const d = new HpackDecoder(4096);
  const value = "x".repeat(4000);
  const add = [0x40, 0x01, 0x62, 0x7f, ...encodeInt7(4000 - 127), ...text.encode(value)];
  // One 4 KB entry, then 10,000 one-byte references to it: 40 MB if expanded.
  const block = Uint8Array.from([...add, ...new Array(10_000).fill(0xbe)]);
  const t0 = performance.now();
  assert.throws(() => d.decode(block, 16 << 10), HeaderListTooLarge);
  assert.ok(performance.now() - t0 < 1000);
  // The table stayed in sync: the entry is still there for the next block.
  assert.equal(d.decode(Uint8Array.of(0xbe), 1 << 16)[0][1].length, 4000);
});

function encodeInt7(rest: number): number[] {
  const out: number[] = [];
  while (rest >= 128) {
    out.push((rest & 0x7f) | 0x80);
    rest >>= 7;
  }
  out.push(rest);
  return out;
}

Deno.test("hpack: the encoder's blocks decode to the same list and never index", () => {
  const list: [string, string][] = [
    [":status", "200"],
    ["content-type", "application/grpc"],
    ["grpc-status", "3"],
    ["grpc-message", "etcdserver: key is not provided %25 \u00e9"],
  ];
  const d = new HpackDecoder(0); // a peer with no dynamic table at all
  assert.deepEqual(d.decode(encodeHeaders(list), 1 << 16).slice(0, 3), list.slice(0, 3));
  assert.deepEqual(encodeHeaders([[":status", "200"]]), Uint8Array.of(0x88));
});
