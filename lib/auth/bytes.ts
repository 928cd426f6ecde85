/**
 * User and role names and passwords are bytes in etcd (its protobuf code
 * checks no UTF-8), so `p\xffw` and `p\xfew` are different passwords. Here
 * they travel as JavaScript strings that keep every byte: valid UTF-8 decodes
 * as usual, and each byte of an invalid sequence becomes the lone surrogate
 * U+DC80 + (byte - 0x80) (Python's "surrogateescape"), which valid UTF-8
 * never produces, so two different byte strings never meet as one string.
 */

const strict = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();
const ESCAPE = 0xdc00;

/** Length of the valid UTF-8 sequence at `i`, or 0 when the byte there starts none. */
function sequenceLength(b: Uint8Array, i: number): number {
  const lead = b[i];
  if (lead < 0x80) return 1;
  let n: number, min: number, max = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) n = 2, min = 0x80;
  else if (lead === 0xe0) n = 3, min = 0xa0;
  else if (lead === 0xed) n = 3, min = 0x80, max = 0x9f; // no UTF-16 surrogates
  else if (lead >= 0xe1 && lead <= 0xef) n = 3, min = 0x80;
  else if (lead === 0xf0) n = 4, min = 0x90;
  else if (lead === 0xf4) n = 4, min = 0x80, max = 0x8f; // nothing past U+10FFFF
  else if (lead >= 0xf1 && lead <= 0xf3) n = 4, min = 0x80;
  else return 0;
  if (i + n > b.length || b[i + 1] < min || b[i + 1] > max) return 0;
  for (let k = 2; k < n; k++) if (b[i + k] < 0x80 || b[i + k] > 0xbf) return 0;
  return n;
}

/** The string for `bytes`, keeping invalid UTF-8 bytes as escapes. */
export function bytesToName(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    let out = "";
    let start = 0;
    for (let i = 0; i < bytes.length;) {
      const n = sequenceLength(bytes, i);
      if (n > 0) {
        i += n;
        continue;
      }
      out += strict.decode(bytes.subarray(start, i)) + String.fromCharCode(ESCAPE + bytes[i]);
      start = ++i;
    }
    return out + strict.decode(bytes.subarray(start));
  }
}

/** The bytes `name` stands for: the inverse of {@link bytesToName}. */
export function nameToBytes(name: string): Uint8Array {
  if (!/[\udc80-\udcff]/.test(name)) return encoder.encode(name);
  const out: number[] = [];
  let start = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const lone = c >= 0xdc80 && c <= 0xdcff &&
      !(i > 0 && name.charCodeAt(i - 1) >= 0xd800 && name.charCodeAt(i - 1) <= 0xdbff);
    if (!lone) continue;
    out.push(...encoder.encode(name.slice(start, i)), c - ESCAPE);
    start = i + 1;
  }
  out.push(...encoder.encode(name.slice(start)));
  return new Uint8Array(out);
}
