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
import { isReserved, keyFromBytes, RESERVED } from "../keys.ts";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/** Each ASCII character's Base58 digit; -1 outside the alphabet. */
const DIGIT = new Int8Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DIGIT[ALPHABET.charCodeAt(i)] = i;
const META = "meta";
/** First token of a client key that starts with byte 0x00 or 0x01. */
const LOW = "_b";

/**
 * Base58 works on big numbers held in limbs, little-endian, in plain numbers:
 * a limb times a factor plus a carry stays below 2^53, so every step is exact
 * and a key of 256 bytes (etcdctl check perf's) costs a few thousand steps,
 * not the ~100,000 of one byte and one digit at a time.
 */
const LIMB = 2 ** 24;
/** 58⁴: four Base58 digits per limb while encoding. */
const LIMB58 = 58 ** 4;
/** Limbs of the number being converted: one buffer for every conversion. */
let limbs = new Float64Array(64);

/** Base58 (Bitcoin alphabet) of some bytes; each leading zero byte is a `1`. */
export function base58(bytes: Uint8Array): string {
  return base58Text(keyFromBytes(bytes));
}

/** Base58 of a binary string (one byte per code unit). */
function base58Text(text: string): string {
  let zeros = 0;
  while (zeros < text.length && text.charCodeAt(zeros) === 0) zeros++;
  if (limbs.length < text.length) limbs = new Float64Array(2 * text.length);
  const digits = limbs;
  // Three bytes at a time into limbs of four digits each.
  let n = 0;
  for (let i = zeros; i < text.length;) {
    let carry = 0;
    let factor = 1;
    for (const stop = Math.min(text.length, i + 3); i < stop; i++) {
      carry = carry * 256 + text.charCodeAt(i);
      factor *= 256;
    }
    for (let j = 0; j < n; j++) {
      const x = digits[j] * factor + carry;
      carry = Math.floor(x / LIMB58);
      digits[j] = x - carry * LIMB58;
    }
    while (carry > 0) {
      const next = Math.floor(carry / LIMB58);
      digits[n++] = carry - next * LIMB58;
      carry = next;
    }
  }
  let out = "1".repeat(zeros);
  let leading = true;
  for (let j = n - 1; j >= 0; j--) {
    const limb = digits[j];
    for (let place = 58 ** 3; place >= 1; place /= 58) {
      const d = Math.floor(limb / place) % 58;
      if (leading && d === 0) continue;
      leading = false;
      out += ALPHABET[d];
    }
  }
  return out;
}

/** The bytes a Base58 string spells; throws on a character outside the alphabet. */
export function unbase58(text: string): Uint8Array {
  const segment = segmentAt(text, 0, text.length);
  const out = new Uint8Array(segment.length);
  for (let i = 0; i < out.length; i++) out[i] = segment.charCodeAt(i);
  return out;
}

function leadingOnes(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && text.charCodeAt(i) === 49) i++;
  return i - start;
}

/**
 * Decodes the Base58 digits `text[start, end)` into {@link limbs} of 24
 * bits, four digits at a time, and returns how many limbs; leading `1`s give
 * none here.
 */
function digitsToLimbs(text: string, start: number, end: number): number {
  if (limbs.length < end - start) limbs = new Float64Array(2 * (end - start));
  const out = limbs;
  let n = 0;
  for (let i = start + leadingOnes(text, start, end); i < end;) {
    let carry = 0;
    let factor = 1;
    for (const stop = Math.min(end, i + 4); i < stop; i++) {
      const c = text.charCodeAt(i);
      const d = c < 128 ? DIGIT[c] : -1;
      if (d < 0) throw new Error(`invalid base58 character ${text[i]}`);
      carry = carry * 58 + d;
      factor *= 58;
    }
    for (let j = 0; j < n; j++) {
      const x = out[j] * factor + carry;
      carry = Math.floor(x / LIMB);
      out[j] = x - carry * LIMB;
    }
    while (carry > 0) {
      const next = Math.floor(carry / LIMB);
      out[n++] = carry - next * LIMB;
      carry = next;
    }
  }
  return n;
}

/** The key segment (a binary string) the Base58 token `text[start, end)` spells. */
function segmentAt(text: string, start: number, end: number): string {
  const zeros = leadingOnes(text, start, end);
  const n = digitsToLimbs(text, start, end);
  let out = zeros > 0 ? "\0".repeat(zeros) : "";
  let leading = true;
  for (let j = n - 1; j >= 0; j--) {
    const limb = limbs[j];
    for (let shift = 16; shift >= 0; shift -= 8) {
      const byte = (limb >>> shift) & 0xff;
      if (leading && byte === 0) continue;
      leading = false;
      out += String.fromCharCode(byte);
    }
  }
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
  for (const segment of rest.split("/")) tokens.push(base58Text(segment || "/"));
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

/** A KV key longer than this is remembered; about 73 bytes of key make one. */
const LONG_KV_KEY = 100;
const LONG_KEY = 73;

/**
 * The KV keys of long etcd keys this process met, both ways. Converting a
 * segment costs the square of its length (a 256-byte one, as etcdctl check
 * perf writes, thousands of steps), a map lookup only its length, so a long
 * key is converted once for its writes and the messages the index applies.
 * Short keys are converted each time: cheaper than a map entry (remembering
 * every key of a replay of 100,000 cost more than converting them).
 */
export class KeyNames {
  readonly #keys = new Map<string, string>();
  readonly #kvKeys = new Map<string, string>();

  /** The etcd key of a KV key ({@link decodeKey}). */
  decode(kvKey: string): string {
    if (kvKey.length <= LONG_KV_KEY) return decodeKey(kvKey);
    let key = this.#keys.get(kvKey);
    if (key === undefined) this.#remember(kvKey, key = decodeKey(kvKey));
    return key;
  }

  /** The KV key of an etcd key ({@link encodeKey}). */
  encode(key: string): string {
    if (key.length < LONG_KEY) return encodeKey(key);
    let kvKey = this.#kvKeys.get(key);
    if (kvKey === undefined) this.#remember(kvKey = encodeKey(key), key);
    return kvKey;
  }

  #remember(kvKey: string, key: string): void {
    this.#keys.set(kvKey, key);
    this.#kvKeys.set(key, kvKey);
  }
}
