/**
 * A request's key bytes as a key (one code unit per byte, `backend/keys.ts`):
 * any bytes, NUL, 0xFF and invalid UTF-8 included, as etcd takes them. An
 * engine that cannot store a key refuses it when it is written (the SQL
 * dialect's `keyError`). Every client range ends at or below
 * {@link CLIENT_KEYS_END}, so kine's own keys never reach a client.
 */
import { FROM_KEY } from "../backend/types.ts";
import { CLIENT_KEYS_END, keyFromBytes } from "../backend/keys.ts";

export { compareBytes } from "../backend/keys.ts";

/** The key of a single-key request (undefined or empty bytes give ""). */
export function keyText(b: Uint8Array | undefined): string {
  return b && b.length > 0 ? keyFromBytes(b) : "";
}

/**
 * A request's key and range end as keys: `end` "" for a single key, and
 * etcd's open end (`\0`) as {@link CLIENT_KEYS_END}. An empty key with a
 * range end is `\0`, the bottom of the key space, as etcd reads it.
 */
export function keyRange(
  keyBytes: Uint8Array | undefined,
  endBytes: Uint8Array | undefined,
): { key: string; end: string } {
  if (!endBytes || endBytes.length === 0) return { key: keyText(keyBytes), end: "" };
  const key = keyBytes && keyBytes.length > 0 ? keyFromBytes(keyBytes) : "\0";
  const end = keyFromBytes(endBytes);
  return { key, end: end === FROM_KEY ? CLIENT_KEYS_END : end };
}
