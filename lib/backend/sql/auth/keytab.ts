/**
 * Reads the principal names of an MIT keytab file (format versions 0x501 and 0x502), so a
 * missing principal is a clear start-up error instead of a GSSAPI failure at the first login.
 * Key material is skipped, never decoded or kept.
 *
 * @module
 */

/** A keytab that is not in the MIT file format. */
export class KeytabFormatError extends Error {
  override name = "KeytabFormatError";
}

/** The distinct principals (`a/b@REALM`) listed in a keytab, in file order. */
export function keytabPrincipals(bytes: Uint8Array): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 2 || bytes[0] !== 5 || (bytes[1] !== 1 && bytes[1] !== 2)) {
    throw new KeytabFormatError("not an MIT keytab (bad version header)");
  }
  const v1 = bytes[1] === 1;
  const dec = new TextDecoder();
  const names: string[] = [];
  let off = 2;
  const need = (n: number, end: number) => {
    if (off + n > end) throw new KeytabFormatError("truncated keytab entry");
  };
  while (off + 4 <= bytes.length) {
    const size = view.getInt32(off);
    off += 4;
    if (size < 0) { // a hole left by a removed entry
      off += -size;
      continue;
    }
    if (size === 0) break;
    const end = off + size;
    if (end > bytes.length) throw new KeytabFormatError("truncated keytab entry");
    const entry = off;
    const str = () => {
      need(2, end);
      const len = view.getUint16(off);
      off += 2;
      need(len, end);
      const s = dec.decode(bytes.subarray(off, off + len));
      off += len;
      return s;
    };
    need(2, end);
    let count = view.getUint16(off);
    off += 2;
    if (v1) count--; // version 1 counts the realm among the components
    const realm = str();
    const parts: string[] = [];
    for (let i = 0; i < count; i++) parts.push(str());
    const name = `${parts.join("/")}@${realm}`;
    if (!names.includes(name)) names.push(name);
    off = entry + size;
  }
  return names;
}
