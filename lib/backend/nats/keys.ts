/**
 * Keys as upstream kine stores them in a JetStream KV bucket (spec §7.3), so a
 * bucket written by upstream kine names the same keys: a leading `/` is
 * dropped (a key without one gets a first token `meta`), the rest is split on
 * `/`, and each segment (an empty one becomes `/`) is Base58-encoded with the
 * Bitcoin alphabet; tokens are joined with `.`. Segments are bytes (keys are
 * byte strings, `../keys.ts`), so NUL, 0xFF and invalid UTF-8 encode too.
 *
 * kine's own keys (`\u0100…`) are encoded as `\x01…`, where kine kept them
 * before keys were bytes, so existing buckets keep their auth state and
 * alarms. A client key starting with byte 0x00 or 0x01 (refused before) gets
 * a first token `_b`, outside the Base58 alphabet, so it never meets them.
 * The backend needs no order of KV keys: its replica orders the keys itself.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import { isReserved, keyToBytes, RESERVED } from "../keys.ts";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** Each ASCII character's Base58 digit; -1 outside the alphabet. */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;
const META = "meta";
/** First token of a client key that starts with byte 0x00 or 0x01. */
const LOW = "_b";

/** Base58 (Bitcoin alphabet) of some bytes; each leading zero byte is a `1`. */
export function base58(bytes: Uint8Array): string {
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  // Little-endian base-58 digits of the big-endian number the bytes spell.
  const digits: number[] = [];
  for (let i = zeros; i < bytes.length; i++) {
    let carry = bytes[i];
    for (let j = 0; j < digits.length; j++) {
      carry += digits[j] << 8;
      digits[j] = carry % 58;
      carry = (carry / 58) | 0;
    }
    while (carry > 0) {
      digits.push(carry % 58);
      carry = (carry / 58) | 0;
    }
  }
  let out = "1".repeat(zeros);
  for (let i = digits.length - 1; i >= 0; i--) out += ALPHABET[digits[i]];
  return out;
}

/** The bytes a Base58 string spells; throws on a character outside the alphabet. */
export function unbase58(text: string): Uint8Array {
  const zeros = leadingOnes(text, 0, text.length);
  const n = digitsToBytes(text, zeros, text.length);
  const out = new Uint8Array(zeros + n);
  for (let i = 0; i < n; i++) out[zeros + i] = scratch[n - 1 - i];
  return out;
}

/** Little-endian bytes of the number being decoded: one buffer for every decode. */
let scratch = new Uint8Array(64);

function leadingOnes(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && text.charCodeAt(i) === 49) i++;
  return i - start;
}

/**
 * Decodes the Base58 digits `text[start, end)` into {@link scratch} as
 * little-endian bytes and returns how many; leading `1`s give no bytes here.
 * Three digits at a time: 255 · 58³ plus a carry stays within 31 bits, so the
 * arithmetic stays on small integers, a third as many passes over the bytes.
 */
function digitsToBytes(text: string, start: number, end: number): number {
  // Each digit adds under 6 bits: the bytes never outgrow the digits.
  if (scratch.length < end - start) scratch = new Uint8Array(2 * (end - start));
  const bytes = scratch;
  let n = 0;
  for (let i = start + leadingOnes(text, start, end); i < end;) {
    let carry = 0;
    let factor = 1;
    for (const stop = Math.min(end, i + 3); i < stop; i++) {
      const c = text.charCodeAt(i);
      const d = c < 128 ? DIGIT[c] : -1;
      if (d < 0) throw new Error(`invalid base58 character ${text[i]}`);
      carry = carry * 58 + d;
      factor *= 58;
    }
    for (let j = 0; j < n; j++) {
      carry += bytes[j] * factor;
      bytes[j] = carry & 0xff;
      carry >>>= 8;
    }
    while (carry > 0) {
      bytes[n++] = carry & 0xff;
      carry >>>= 8;
    }
  }
  return n;
}

/** The key segment (a binary string) the Base58 token `text[start, end)` spells. */
function segmentAt(text: string, start: number, end: number): string {
  const zeros = leadingOnes(text, start, end);
  const n = digitsToBytes(text, start, end);
  let out = zeros > 0 ? "\0".repeat(zeros) : "";
  for (let j = n - 1; j >= 0; j--) out += String.fromCharCode(scratch[j]);
  return out;
}

/** The KV key (subject tokens) of an etcd key; `""` and `"/"` have none. */
export function encodeKey(key: string): string {
  if (key === "" || key === "/") {
    throw new BackendError(
      "invalid",
      `etcdserver: key ${JSON.stringify(key)} is not valid on NATS`,
    );
  }
  if (isReserved(key)) return plainKey("\x01" + key.slice(1));
  return key.charCodeAt(0) < 2 ? `${LOW}.${plainKey(key)}` : plainKey(key);
}

/** Upstream's encoding of a key's bytes. */
function plainKey(key: string): string {
  const tokens = key.startsWith("/") ? [] : [META];
  const rest = key.startsWith("/") ? key.slice(1) : key;
  for (const segment of rest.split("/")) tokens.push(base58(keyToBytes(segment || "/")));
  return tokens.join(".");
}

/**
 * Decoded key prefixes (every token but the last) of recent keys: keys share
 * their prefixes (`/registry/pods/<namespace>/`), so a replay of the stream
 * decodes mostly one token per message. Cleared when full.
 */
const prefixes = new Map<string, string>();
const PREFIXES_MAX = 4096;

/** The etcd key a KV key stands for; throws if it is not one {@link encodeKey} makes. */
export function decodeKey(subjectKey: string): string {
  if (subjectKey.startsWith(`${LOW}.`)) return decodePlain(subjectKey.slice(LOW.length + 1));
  const key = decodePlain(subjectKey);
  return key.charCodeAt(0) === 1 ? RESERVED + key.slice(1) : key;
}

function decodePlain(subjectKey: string): string {
  const last = subjectKey.lastIndexOf(".");
  let prefix = "";
  if (last >= 0) {
    const tokens = subjectKey.slice(0, last);
    const known = prefixes.get(tokens);
    if (known !== undefined) prefix = known;
    else {
      prefix = decodeTokens(tokens);
      if (prefixes.size >= PREFIXES_MAX) prefixes.clear();
      prefixes.set(tokens, prefix);
    }
  }
  // A key of one token after `meta` has no `/` before it; any other segment has one.
  const slash = last === META.length && subjectKey.startsWith(META) ? "" : "/";
  return prefix + slash + segment(subjectKey, last + 1, subjectKey.length);
}

/** The key prefix of all but the last token: each token's segment after a `/`, `meta` none. */
function decodeTokens(tokens: string): string {
  let out = "";
  let start = 0;
  if (tokens === META) return "";
  if (tokens.startsWith(`${META}.`)) {
    const dot = tokens.indexOf(".", META.length + 1);
    const end = dot < 0 ? tokens.length : dot;
    out = segment(tokens, META.length + 1, end);
    if (dot < 0) return out;
    start = dot + 1;
  }
  for (;;) {
    const dot = tokens.indexOf(".", start);
    const end = dot < 0 ? tokens.length : dot;
    out += "/" + segment(tokens, start, end);
    if (dot < 0) return out;
    start = dot + 1;
  }
}

/** A segment as a key holds it: the empty segment is encoded as `/`. */
function segment(text: string, start: number, end: number): string {
  const s = segmentAt(text, start, end);
  return s === "/" ? "" : s;
}
