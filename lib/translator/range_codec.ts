/**
 * A direct protobuf encoder for RangeResponse, the one large message kine
 * sends: it writes the wire bytes straight from the backend's result instead
 * of building a message object per key for the generic encoder. Field numbers
 * are etcd's (RangeResponse: header 1, kvs 2, more 3, count 4; KeyValue: key 1,
 * create_revision 2, mod_revision 3, version 4, value 5, lease 6).
 */
import type { KeyValue, RangeResult } from "../backend/types.ts";

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/** Size of an int64 field with tag: negative values take 10 bytes, zero is omitted. */
function intField(n: number): number {
  if (n === 0) return 0;
  return 1 + (n < 0 ? 10 : varintSize(n));
}

function bytesField(len: number): number {
  return len === 0 ? 0 : 1 + varintSize(len) + len;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(n: number): void {
    if (n < 0) {
      // Two's complement over 64 bits, as protobuf writes negative int64.
      let big = BigInt.asUintN(64, BigInt(n));
      while (big >= 0x80n) {
        this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.buf[this.pos++] = Number(big);
      return;
    }
    while (n >= 0x80) {
      this.buf[this.pos++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    this.buf[this.pos++] = n;
  }

  int(tag: number, n: number): void {
    if (n === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(n);
  }

  /** A key's bytes (one code unit per byte, `backend/keys.ts`), copied by hand. */
  key(tag: number, s: string): void {
    const len = s.length;
    if (len === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(len);
    for (let i = 0; i < len; i++) this.buf[this.pos + i] = s.charCodeAt(i);
    this.pos += len;
  }

  bytes(tag: number, b: Uint8Array): void {
    if (b.length === 0) return;
    this.buf[this.pos++] = tag;
    this.varint(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
}

/**
 * An encoded message held in parts. Whoever frames it copies it out once with
 * {@link EncodedMessage.copy}, so a list encoded page by page is never joined
 * into one more buffer of its own size first.
 */
export class EncodedMessage {
  constructor(readonly parts: Uint8Array[], readonly byteLength: number) {}

  /** Writes the message into `target` at `offset`; returns the bytes written. */
  copy(target: Uint8Array, offset = 0): number {
    for (const part of this.parts) {
      target.set(part, offset);
      offset += part.length;
    }
    return this.byteLength;
  }
}

/** Encodes a RangeResponse from pages of kvs in order, then its header, more and count. */
export class RangeEncoder {
  readonly #pages: Uint8Array[] = [];
  #size = 0;

  /** Bytes of the kvs added so far. */
  get kvsBytes(): number {
    return this.#size;
  }

  /** Appends `kvs` to the response's repeated `kvs` field. */
  add(kvs: KeyValue[]): void {
    if (kvs.length === 0) return;
    const sizes = kvs.map((kv) =>
      bytesField(kv.key.length) + intField(kv.createRevision) + intField(kv.modRevision) +
      intField(kv.version) + bytesField(kv.value.length) + intField(kv.lease)
    );
    let total = 0;
    for (const size of sizes) total += 1 + varintSize(size) + size;
    const w = new Writer(new Uint8Array(total));
    kvs.forEach((kv, i) => {
      w.buf[w.pos++] = 0x12; // kvs
      w.varint(sizes[i]);
      w.key(0x0a, kv.key);
      w.int(0x10, kv.createRevision);
      w.int(0x18, kv.modRevision);
      w.int(0x20, kv.version);
      w.bytes(0x2a, kv.value);
      w.int(0x30, kv.lease);
    });
    this.#pages.push(w.buf);
    this.#size += total;
  }

  /** The whole `RangeResponse{header{revision}, kvs, more, count}`. */
  finish(revision: number, more: boolean, count: number): EncodedMessage {
    const header = intField(revision);
    const head = new Writer(new Uint8Array(1 + varintSize(header) + header));
    head.buf[head.pos++] = 0x0a; // header
    head.varint(header);
    head.int(0x18, revision);
    const tail = new Writer(new Uint8Array((more ? 2 : 0) + intField(count)));
    if (more) {
      tail.buf[tail.pos++] = 0x18;
      tail.buf[tail.pos++] = 1;
    }
    tail.int(0x20, count);
    const parts = [head.buf, ...this.#pages, tail.buf];
    return new EncodedMessage(parts, head.buf.length + this.#size + tail.buf.length);
  }

  /** The kvs added so far as a RangeResponse with no header, `more` or `count`. */
  kvsOnly(): EncodedMessage {
    return new EncodedMessage([...this.#pages], this.#size);
  }
}

/** Wraps an encoded RangeResponse as `RangeStreamResponse{range_response = 1}`. */
export function rangeStreamResponse(range: EncodedMessage): EncodedMessage {
  const head = new Writer(new Uint8Array(1 + varintSize(range.byteLength)));
  head.buf[head.pos++] = 0x0a;
  head.varint(range.byteLength);
  return new EncodedMessage([head.buf, ...range.parts], head.buf.length + range.byteLength);
}

/** A RangeResponse for one backend result. */
export function encodeRangeResponse(r: RangeResult, revision: number): EncodedMessage {
  const encoder = new RangeEncoder();
  encoder.add(r.kvs);
  return encoder.finish(revision, r.more, r.count);
}
