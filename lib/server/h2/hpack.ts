/**
 * HPACK (RFC 7541): a decoder with the dynamic table, size updates and
 * Huffman strings, bounded by SETTINGS_MAX_HEADER_LIST_SIZE while it decodes
 * (an HPACK bomb stops at the limit instead of allocating), and a stateless
 * encoder for response headers (static-table names, literals never added to
 * the peer's table, so the encoder needs no table of its own).
 *
 * @module
 */
import { huffmanDecode, huffmanEncode, huffmanLength } from "./huffman.ts";

/** RFC 7541 Appendix A. */
const STATIC_TABLE: [string, string][] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

/** Per-entry overhead counted in table and header list sizes (RFC 7541 §4.1). */
const ENTRY_OVERHEAD = 32;

/** A decoding failure: the connection must end with COMPRESSION_ERROR. */
export class HpackError extends Error {}

/** The header list went over the limit; the request is refused, the table stays in sync. */
export class HeaderListTooLarge extends Error {}

const latin1 = new TextDecoder("latin1");
/** Decoded Huffman strings by their encoded bytes (as latin1), shared by all connections. */
const huffmanCache = new Map<string, string>();
const HUFFMAN_CACHE_SIZE = 1024;
const utf8 = new TextEncoder();

/** Decodes header blocks of one connection (the dynamic table is per connection). */
export class HpackDecoder {
  /** Newest first. */
  #table: [string, string][] = [];
  #size = 0;
  #maxSize: number;
  /** The limit our SETTINGS_HEADER_TABLE_SIZE announced; size updates may not exceed it. */
  #limit: number;

  constructor(tableSize = 4096) {
    this.#maxSize = tableSize;
    this.#limit = tableSize;
  }

  /**
   * Decodes one complete header block into name/value pairs. Throws
   * {@link HpackError} for malformed input and {@link HeaderListTooLarge} once
   * the list passes `maxListSize` (after decoding the whole block, so the
   * dynamic table stays consistent with the peer's).
   */
  decode(block: Uint8Array, maxListSize: number): [string, string][] {
    const out: [string, string][] = [];
    let listSize = 0;
    let tooLarge = false;
    let p = 0;
    let sawField = false;
    const int = (prefixBits: number): number => {
      if (p >= block.length) throw new HpackError("hpack: truncated integer");
      const mask = (1 << prefixBits) - 1;
      let v = block[p++] & mask;
      if (v < mask) return v;
      let shift = 0;
      for (;;) {
        if (p >= block.length) throw new HpackError("hpack: truncated integer");
        const b = block[p++];
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (v > 2 ** 31) throw new HpackError("hpack: integer overflow");
        if ((b & 0x80) === 0) return v;
      }
    };
    const str = (): string => {
      if (p >= block.length) throw new HpackError("hpack: truncated string");
      const huffman = (block[p] & 0x80) !== 0;
      const len = int(7);
      if (p + len > block.length) throw new HpackError("hpack: truncated string");
      const raw = block.subarray(p, p + len);
      p += len;
      if (!huffman) return latin1.decode(raw);
      // Clients that do not index a field send the same Huffman bytes on every request.
      const key = latin1.decode(raw);
      const known = huffmanCache.get(key);
      if (known !== undefined) return known;
      let value: string;
      try {
        value = latin1.decode(huffmanDecode(raw));
      } catch (err) {
        throw new HpackError((err as Error).message);
      }
      if (huffmanCache.size >= HUFFMAN_CACHE_SIZE) huffmanCache.clear();
      huffmanCache.set(key, value);
      return value;
    };
    const emit = (name: string, value: string) => {
      sawField = true;
      listSize += name.length + value.length + ENTRY_OVERHEAD;
      if (listSize > maxListSize) tooLarge = true;
      if (!tooLarge) out.push([name, value]);
    };
    while (p < block.length) {
      const b = block[p];
      if (b & 0x80) {
        emit(...this.#get(int(7)));
      } else if (b & 0x40) {
        const index = int(6);
        const name = index === 0 ? str() : this.#get(index)[0];
        const value = str();
        this.#add(name, value);
        emit(name, value);
      } else if (b & 0x20) {
        // Size updates must come first in a block (RFC 7541 §4.2).
        if (sawField) throw new HpackError("hpack: table size update after a field");
        const size = int(5);
        if (size > this.#limit) throw new HpackError("hpack: table size update over the limit");
        this.#maxSize = size;
        this.#evict(0);
      } else {
        // Literal without indexing (0000) or never indexed (0001).
        const index = int(4);
        const name = index === 0 ? str() : this.#get(index)[0];
        emit(name, str());
      }
    }
    if (tooLarge) throw new HeaderListTooLarge("header list too large");
    return out;
  }

  #get(index: number): [string, string] {
    if (index === 0) throw new HpackError("hpack: index 0");
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const e = this.#table[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError("hpack: index out of range");
    return e;
  }

  #add(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD;
    this.#evict(size);
    if (size <= this.#maxSize) {
      this.#table.unshift([name, value]);
      this.#size += size;
    }
  }

  /** Evicts oldest entries until `incoming` more octets fit. */
  #evict(incoming: number): void {
    while (this.#table.length > 0 && this.#size + incoming > this.#maxSize) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}

const staticNameIndex = new Map<string, number>();
const staticPairIndex = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!staticNameIndex.has(name)) staticNameIndex.set(name, i + 1);
  staticPairIndex.set(`${name}\0${value}`, i + 1);
});

function writeInt(out: number[], first: number, prefixBits: number, v: number): void {
  const mask = (1 << prefixBits) - 1;
  if (v < mask) {
    out.push(first | v);
    return;
  }
  out.push(first | mask);
  v -= mask;
  while (v >= 128) {
    out.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
}

function writeString(out: number[], s: string): void {
  const raw = utf8.encode(s);
  const hlen = huffmanLength(raw);
  if (hlen < raw.length) {
    const buf = new Uint8Array(hlen);
    huffmanEncode(raw, buf, 0);
    writeInt(out, 0x80, 7, hlen);
    for (const b of buf) out.push(b);
  } else {
    writeInt(out, 0, 7, raw.length);
    for (const b of raw) out.push(b);
  }
}

/**
 * Encodes a header list without touching the peer's dynamic table: static
 * matches are indexed, everything else is a literal "without indexing" (names
 * from the static table where they are there). Such a block is valid whatever
 * table size the peer allows, and the same list always gives the same bytes,
 * so callers can encode constant lists once.
 */
export function encodeHeaders(headers: [string, string][]): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of headers) {
    const pair = staticPairIndex.get(`${name}\0${value}`);
    if (pair !== undefined) {
      writeInt(out, 0x80, 7, pair);
      continue;
    }
    const nameIndex = staticNameIndex.get(name);
    if (nameIndex !== undefined) {
      writeInt(out, 0, 4, nameIndex);
    } else {
      writeInt(out, 0, 4, 0);
      writeString(out, name);
    }
    writeString(out, value);
  }
  return Uint8Array.from(out);
}
