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
import { isReserved, keyFromBytes, keyToBytes, RESERVED } from "../keys.ts";

const ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const DIGIT = new Map([...ALPHABET].map((c, i) => [c, i]));
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
  let zeros = 0;
  while (zeros < text.length && text[zeros] === "1") zeros++;
  const bytes: number[] = [];
  for (let i = zeros; i < text.length; i++) {
    let carry = DIGIT.get(text[i]);
    if (carry === undefined) throw new Error(`invalid base58 character ${text[i]}`);
    for (let j = 0; j < bytes.length; j++) {
      carry += bytes[j] * 58;
      bytes[j] = carry & 0xff;
      carry >>= 8;
    }
    while (carry > 0) {
      bytes.push(carry & 0xff);
      carry >>= 8;
    }
  }
  const out = new Uint8Array(zeros + bytes.length);
  for (let i = 0; i < bytes.length; i++) out[zeros + i] = bytes[bytes.length - 1 - i];
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

/** The etcd key a KV key stands for; throws if it is not one {@link encodeKey} makes. */
export function decodeKey(subjectKey: string): string {
  if (subjectKey.startsWith(`${LOW}.`)) return decodePlain(subjectKey.slice(LOW.length + 1));
  const key = decodePlain(subjectKey);
  return key.charCodeAt(0) === 1 ? RESERVED + key.slice(1) : key;
}

function decodePlain(subjectKey: string): string {
  const tokens = subjectKey.split(".");
  const meta = tokens[0] === META && tokens.length > 1;
  const segments = (meta ? tokens.slice(1) : tokens).map((t) => {
    const s = keyFromBytes(unbase58(t));
    return s === "/" ? "" : s;
  });
  return (meta ? "" : "/") + segments.join("/");
}
