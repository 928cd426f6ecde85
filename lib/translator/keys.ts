/**
 * Keys travel as bytes and are stored as UTF-8 text, as upstream kine stores
 * them. A key must be valid UTF-8; a range bound need not be (etcdctl's
 * prefix end for "/k/ÿ" is the bytes of "/k/" + C3 C0), so an invalid bound
 * is replaced by the smallest valid string at or above it, which selects the
 * same keys.
 */
import { FROM_KEY } from "../backend/types.ts";
import { Code, EtcdError } from "./errors.ts";

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

export const invalidKey = () =>
  new EtcdError(Code.INVALID_ARGUMENT, "etcdserver: key is not valid UTF-8");

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

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Code point order is UTF-8 byte order; surrogates are not code points of text. */
function scalar(c: number): number {
  return c >= 0xd800 && c <= 0xdfff ? 0xe000 : c;
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
  if (lo > 0x10ffff) return undefined;
  return strict.decode(b.subarray(0, valid)) + String.fromCodePoint(scalar(lo));
}

/** A key that names one key: it must be valid UTF-8. */
export function keyText(b: Uint8Array | undefined): string {
  if (!b || b.length === 0) return "";
  if (b[0] < 2) throw reservedKey();
  try {
    return strict.decode(b);
  } catch {
    throw invalidKey();
  }
}

/** The lower bound of a range, never below {@link CLIENT_KEYS_START}. */
export function startText(b: Uint8Array): string {
  if (b.length === 0 || b[0] < 2) return CLIENT_KEYS_START;
  const s = ceilUtf8(b);
  if (s === undefined) throw invalidKey();
  return s;
}

/** A range end: "" = single key, {@link FROM_KEY} = open-ended. */
export function endText(b: Uint8Array | undefined): string {
  if (!b || b.length === 0) return "";
  return ceilUtf8(b) ?? FROM_KEY;
}
