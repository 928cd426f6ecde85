/**
 * Keys travel as bytes and are stored as UTF-8 text, as upstream kine stores
 * them. A key must be valid UTF-8 without a NUL byte: SQL text columns cut or
 * refuse NUL (SQLite reads such a name back cut at the NUL, PostgreSQL does
 * not store it), so a key could not round-trip byte-exact on every backend. A
 * range bound need not be either (etcdctl's prefix end for "/k/ÿ" is the
 * bytes of "/k/" + C3 C0; kube's continue token ends in NUL), so an invalid
 * bound is replaced by the smallest valid string at or above it, which
 * selects the same keys.
 */
import { FROM_KEY } from "../backend/types.ts";
import { Code, EtcdError } from "./errors.ts";

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

export const invalidKey = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: key is not valid UTF-8");
export const nulInKey = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: key contains a NUL byte");

/**
 * The start and end of a range no string falls in: a lower bound above every
 * valid string (a prefix read of 0xFF) selects nothing.
 */
const ABOVE_ALL = "\u{10FFFF}";

/**
 * Keys below this one (those starting with byte 0x00 or 0x01) are kine's own
 * (lib/auth keeps its state there). Being the bottom of the key space, they
 * are hidden from every client range by raising its start, never by filtering.
 */
export const CLIENT_KEYS_START = "\x02";

export const reservedKey = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: keys starting with 0x00 or 0x01 are reserved");

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

/** The scalar value after `c`, skipping surrogates; above U+10FFFF if none. */
function nextScalar(c: number): number {
  return scalar(c + 1);
}

/** The smallest valid string whose bytes are ≥ `b`, or undefined if none is. */
export function ceilUtf8(b: Uint8Array): string | undefined {
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
  // No code point here reaches the rest (it starts with F5..FF, or F4 90+): no string
  // with this prefix is ≥ b, so carry into the previous code point, as "a" + FF → "b".
  while (prefix.length > 0) {
    const next = nextScalar(prefix.pop()!.codePointAt(0)!);
    if (next <= 0x10ffff) return prefix.join("") + String.fromCodePoint(next);
  }
  return undefined;
}

/** A key that names one key: valid UTF-8 without NUL. */
export function keyText(b: Uint8Array | undefined): string {
  if (!b || b.length === 0) return "";
  if (b[0] < 2) throw reservedKey();
  if (b.includes(0)) throw nulInKey();
  try {
    return strict.decode(b);
  } catch {
    throw invalidKey();
  }
}

/** A range end: "" = single key, {@link FROM_KEY} = open-ended. */
function endText(b: Uint8Array | undefined): string {
  if (!b || b.length === 0) return "";
  return ceilUtf8(b) ?? FROM_KEY;
}

/**
 * A request's key and range end as stored text: the key of a single-key
 * request must be a valid key; a range's bounds are rounded up to valid text
 * (a start above every string gives an empty range).
 */
export function keyRange(
  keyBytes: Uint8Array | undefined,
  endBytes: Uint8Array | undefined,
): { key: string; end: string } {
  const end = endText(endBytes);
  if (end === "") return { key: keyText(keyBytes), end };
  // Never below CLIENT_KEYS_START: kine's own keys are hidden by raising the start.
  if (!keyBytes || keyBytes.length === 0 || keyBytes[0] < 2) return { key: CLIENT_KEYS_START, end };
  const key = ceilUtf8(keyBytes);
  return key === undefined ? { key: ABOVE_ALL, end: ABOVE_ALL } : { key, end };
}
