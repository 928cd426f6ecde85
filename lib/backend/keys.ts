/**
 * Keys are UTF-8 strings in storage. etcd orders keys by their bytes; UTF-8
 * byte order is code point order, which JS string comparison (UTF-16 code
 * units) breaks for code points above U+FFFF against U+E000–U+FFFF.
 */

/** Compares two keys in UTF-8 byte order: negative, zero or positive. */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (U+D800–DFFF, i.e. code points ≥ U+10000) sort after U+E000–U+FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x += x < 0xe000 ? 0x2000 : -0x800;
      y += y < 0xe000 ? 0x2000 : -0x800;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** True if `key` is in `[start, end)`; `end` "" means exactly `start`, "\0" open-ended. */
export function keyInRange(key: string, start: string, end: string): boolean {
  if (end === "") return key === start;
  return compareKeys(key, start) >= 0 && (end === "\0" || compareKeys(key, end) < 0);
}
