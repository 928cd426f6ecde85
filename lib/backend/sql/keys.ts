/**
 * Keys (byte strings, `../keys.ts`) as the `name` column holds them. A key
 * that is UTF-8 text without NUL is stored as that text, exactly as upstream
 * kine and earlier kine stored it, so existing tables keep working. On
 * SQLite every other key is a BLOB of its bytes; PostgreSQL's and MySQL's
 * text columns cannot hold it, and the write is refused.
 *
 * kine's own keys (`\u0100…`) are stored as `\x01…`, where kine kept them
 * before keys were bytes; a client key starting with 0x00 or 0x01 is never
 * stored as text (a BLOB on SQLite, refused elsewhere), so the two never meet.
 *
 * Ordering: SQLite sorts every TEXT before every BLOB, and each in byte
 * order. So a range is read as up to three disjoint parts — text keys, BLOB
 * keys, kine's own keys — and merged here (see {@link rangeParts}).
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { Dialect } from "./dialect.ts";
import {
  ceilText,
  isAscii,
  isReserved,
  keyFromBytes,
  keyFromText,
  keyToBytes,
  RESERVED,
  utf8Text,
} from "../keys.ts";

/** The stored prefix of kine's own keys. */
const STORED_RESERVED = "\x01";

/** True if the text `s` may be stored as a client key's text: no NUL, no 0x00/0x01 start. */
function textStorable(s: string): boolean {
  return s.charCodeAt(0) > 1 && !s.includes("\0");
}

/**
 * The stored form of `key`: its text, or its bytes where `binary` (SQLite)
 * and it is not text; undefined where the engine cannot store it.
 */
export function storedKey(key: string, binary: boolean): string | Uint8Array | undefined {
  if (isReserved(key)) return STORED_RESERVED + key.slice(1);
  if (isAscii(key)) return textStorable(key) ? key : binary ? keyToBytes(key) : undefined;
  const bytes = keyToBytes(key);
  const text = utf8Text(bytes);
  if (text !== undefined && textStorable(text)) return text;
  return binary ? bytes : undefined;
}

const ENGINE: Record<string, string> = { postgres: "PostgreSQL", mysql: "MySQL" };

/**
 * The name a row of `key` is written with, or the `InvalidArgument` error
 * of an engine that cannot store it (a text engine, or the dialect's own
 * limits, as MySQL's ascii column).
 */
export function nameToWrite(key: string, dialect: Dialect): string | Uint8Array | BackendError {
  const name = storedKey(key, dialect.binaryKeys === true);
  if (name === undefined) {
    return new BackendError(
      "invalid",
      `etcdserver: ${ENGINE[dialect.name] ?? dialect.name} stores keys as text: a key must be ` +
        "valid UTF-8 without NUL and must not start with byte 0x00 or 0x01",
    );
  }
  const unfit = typeof name === "string" ? dialect.keyError(name) : undefined;
  return unfit ? new BackendError("invalid", unfit) : name;
}

/** The key a stored `name` stands for (the inverse of {@link storedKey}). */
export function keyOfStored(name: unknown): string {
  if (name instanceof Uint8Array) return keyFromBytes(name);
  const s = String(name);
  if (s.charCodeAt(0) === 1) return RESERVED + s.slice(1);
  return keyFromText(s);
}

/** One stored range: `name >= lo` (or `> lo`), and `name < hi` (or `<= hi`) if `hi` is given. */
export interface StoredRange {
  lo: string | Uint8Array;
  loOp: ">=" | ">";
  hi?: string | Uint8Array;
  hiOp?: "<" | "<=";
}

/** An empty BLOB: above every TEXT in SQLite's order, so `< X''` bounds text keys alone. */
const EMPTY_BLOB = new Uint8Array(0);

/**
 * The stored ranges that hold the keys of `[start, end)` (`end` null =
 * open-ended, kine's own keys included), each in key order within itself.
 * `cut` rewrites a text range to what the engine can compare (NUL, MySQL's
 * ascii), or returns null when no storable text is in it.
 */
export function rangeParts(
  start: string,
  end: string | null,
  binary: boolean,
  cut: (lo: string, hi: string | null) => StoredRange | null,
): StoredRange[] {
  const parts: StoredRange[] = [];
  const clientEnd = end === null || isReserved(end) ? null : end;
  if (!isReserved(start)) {
    // Text keys: the smallest text at or above each bound selects the same text keys.
    let lo = ceilText(start);
    if (lo !== undefined && lo < "\x02") lo = "\x02";
    const hi = clientEnd === null ? null : ceilText(clientEnd) ?? null;
    const text = lo === undefined ? null : cut(lo, hi);
    if (text) {
      // On SQLite an open text range would run on into the BLOBs.
      if (binary && text.hi === undefined) Object.assign(text, { hi: EMPTY_BLOB, hiOp: "<" });
      parts.push(text);
    }
    if (binary) {
      const blob: StoredRange = { lo: keyToBytes(start), loOp: ">=" };
      if (clientEnd !== null) Object.assign(blob, { hi: keyToBytes(clientEnd), hiOp: "<" });
      parts.push(blob);
    }
  }
  if (end === null || isReserved(end)) {
    const lo = isReserved(start) ? STORED_RESERVED + start.slice(1) : STORED_RESERVED;
    const hi = end === null ? "\x02" : STORED_RESERVED + end.slice(1);
    if (hi > lo) parts.push({ lo, loOp: ">=", hi, hiOp: "<" });
  }
  return parts;
}
