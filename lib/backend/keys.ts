/**
 * Keys are bytes, as in etcd. Inside kine a key is a "binary string": one
 * UTF-16 code unit per byte (0–255), so an ASCII key is the same string it
 * always was, and JavaScript's string comparison is etcd's unsigned bytewise
 * order. Only the stores see anything else: the SQL engines keep keys that
 * are UTF-8 text as text (`sql/keys.ts`), NATS Base58-encodes the bytes.
 *
 * kine's own keys (auth state, alarms, health) start with {@link RESERVED},
 * a code unit no byte maps to: no client request can name one, and they sort
 * after every client key, so a client range is kept off them by ending it at
 * {@link CLIENT_KEYS_END}.
 *
 * @module
 */

/** First code unit of kine's own keys; above every byte, so above every client key. */
export const RESERVED = "\u0100";

/** The end of every client range: the bottom of kine's own keys. */
export const CLIENT_KEYS_END = RESERVED;

/** True for one of kine's own keys. */
export function isReserved(key: string): boolean {
  return key.charCodeAt(0) === 0x100;
}

/** Compares two keys in etcd's (unsigned bytewise) order: negative, zero or positive. */
export function compareKeys(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** True if `key` is in `[start, end)`; `end` "" means exactly `start`, "\0" open-ended. */
export function keyInRange(key: string, start: string, end: string): boolean {
  if (end === "") return key === start;
  return key >= start && (end === "\0" || key < end);
}

/** The key whose bytes are `b`. */
export function keyFromBytes(b: Uint8Array): string {
  let out = "";
  // fromCharCode over chunks: one call per 8 KiB instead of one per byte.
  for (let i = 0; i < b.length; i += 8192) {
    out += String.fromCharCode.apply(null, b.subarray(i, i + 8192) as unknown as number[]);
  }
  return out;
}

/**
 * The bytes of `key`. One of kine's own keys gives the bytes it had before
 * keys were bytes (`\x01kine/auth`), which hashes and copies to etcd keep.
 */
export function keyToBytes(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  if (isReserved(key)) out[0] = 1;
  return out;
}

/** True if every code unit of `s` is ASCII (below 0x80). */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return false;
  return true;
}

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

/** The key whose bytes are the UTF-8 encoding of `text`. */
export function keyFromText(text: string): string {
  return isAscii(text) ? text : keyFromBytes(encoder.encode(text));
}

/** The text `key`'s bytes spell in UTF-8, or undefined if they are not valid UTF-8. */
export function keyToText(key: string): string | undefined {
  return isAscii(key) ? key : utf8Text(keyToBytes(key));
}

/** The text bytes `b` spell in UTF-8, or undefined if they are not valid UTF-8. */
export function utf8Text(b: Uint8Array): string | undefined {
  // Checked first: a decoder's exception costs more than the whole check (check perf's keys).
  return validPrefix(b) === b.length ? strict.decode(b) : undefined;
}

/** Length of the valid UTF-8 prefix of `b`. */
function validPrefix(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const x = b[i];
    let n: number, lo = 0x80, hi = 0xbf;
    if (x < 0x80) n = 1;
    else if (x >= 0xc2 && x <= 0xdf) n = 2;
    else if (x >= 0xe0 && x <= 0xef) {
      n = 3;
      if (x === 0xe0) lo = 0xa0;
      if (x === 0xed) hi = 0x9f;
    } else if (x >= 0xf0 && x <= 0xf4) {
      n = 4;
      if (x === 0xf0) lo = 0x90;
      if (x === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n > b.length) return i;
    for (let k = 1; k < n; k++) {
      const y = b[i + k];
      if (y < (k === 1 ? lo : 0x80) || y > (k === 1 ? hi : 0xbf)) return i;
    }
    i += n;
  }
  return i;
}

/** Compares two byte strings as etcd orders keys: negative, zero or positive. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Code point order is UTF-8 byte order; surrogates are not code points of text. */
function scalar(c: number): number {
  return c >= 0xd800 && c <= 0xdfff ? 0xe000 : c;
}

/**
 * The smallest text whose UTF-8 bytes are ≥ `key`'s bytes, or undefined if
 * none is: a range bound as a text column can compare it, selecting the same
 * text keys (etcdctl's prefix end of `/k/ÿ` is `/k/` + C3 C0, not UTF-8).
 */
export function ceilText(key: string): string | undefined {
  if (isAscii(key)) return key;
  const b = keyToBytes(key);
  const valid = validPrefix(b);
  if (valid === b.length) return strict.decode(b);
  const rest = b.subarray(valid);
  let lo = 0, hi = 0x10ffff + 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const c = scalar(mid);
    if (compareBytes(encoder.encode(String.fromCodePoint(c)), rest) > 0) hi = mid;
    else lo = mid + 1;
  }
  const prefix = [...strict.decode(b.subarray(0, valid))];
  if (lo <= 0x10ffff) return prefix.join("") + String.fromCodePoint(scalar(lo));
  // No code point here reaches the rest (it starts with F5..FF, or F4 90+): no text
  // with this prefix is ≥ it, so carry into the previous code point, as "a" + FF → "b".
  while (prefix.length > 0) {
    const next = scalar(prefix.pop()!.codePointAt(0)! + 1);
    if (next <= 0x10ffff) return prefix.join("") + String.fromCodePoint(next);
  }
  return undefined;
}
