/**
 * HPACK's Huffman code (RFC 7541 §5.2, Appendix B). The code is canonical, so
 * the table is kept as the bit length of each of the 257 symbols (256 = EOS)
 * and the codes are derived from the lengths.
 *
 * @module
 */

/** Code length of symbol i is `LENGTHS.charCodeAt(i) - 48` (RFC 7541 Appendix B). */
const LENGTHS =
  "=GLLLLLLLHNLLNLLLLLLLLNLLLLLLLLL6::<=68;::8;8666555666666678?6<:=67777777777777777777777878=C=>6?56565666577666567655677777?;>=LDFDDFFFGFGGGGGHGHHFGHGGGGEFGFGGHFEDFFGGEGFFHEFGGEEFEGFGGDFFFGFFGJJDCFGFIJJJKKJHICEJKKJKHEEJJLKKKDHDEFEEGFFIIHHJGJKJJKKKKKLKKKKKJN";

const EOS = 256;
const bitLength = new Uint8Array(257);
const codes = new Uint32Array(257);
/** Symbols ordered by (length, symbol): canonical order. */
const sorted = new Uint16Array(257);
/** Per length: first code, number of codes, index of the first symbol in `sorted`. */
const firstCode = new Uint32Array(31);
const countOf = new Uint32Array(31);
const offsetOf = new Uint32Array(31);

{
  for (let i = 0; i < 257; i++) bitLength[i] = LENGTHS.charCodeAt(i) - 48;
  const order = [...Array(257).keys()].sort((a, b) => bitLength[a] - bitLength[b] || a - b);
  let code = 0;
  let prev = bitLength[order[0]];
  order.forEach((sym, i) => {
    const len = bitLength[sym];
    code <<= len - prev;
    prev = len;
    if (countOf[len] === 0) {
      firstCode[len] = code;
      offsetOf[len] = i;
    }
    countOf[len]++;
    codes[sym] = code++;
    sorted[i] = sym;
  });
}

/** Length in octets of `data` Huffman-encoded. */
export function huffmanLength(data: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < data.length; i++) bits += bitLength[data[i]];
  return (bits + 7) >>> 3;
}

/** Huffman-encodes `data` into `out` at `at`; returns the offset after it. */
export function huffmanEncode(data: Uint8Array, out: Uint8Array, at: number): number {
  let acc = 0;
  let bits = 0;
  for (let i = 0; i < data.length; i++) {
    const len = bitLength[data[i]];
    const code = codes[data[i]];
    // Feed the code in pieces of at most 8 bits so `acc` never overflows 32 bits.
    let left = len;
    while (left > 0) {
      const take = Math.min(left, 8);
      left -= take;
      acc = (acc << take) | ((code >>> left) & ((1 << take) - 1));
      bits += take;
      while (bits >= 8) {
        bits -= 8;
        out[at++] = (acc >>> bits) & 0xff;
      }
      acc &= (1 << bits) - 1;
    }
  }
  // Pad with the most significant bits of EOS (all ones), RFC 7541 §5.2.
  if (bits > 0) out[at++] = ((acc << (8 - bits)) | (0xff >>> bits)) & 0xff;
  return at;
}

/**
 * Decodes a Huffman-encoded string. Throws on EOS in the data, padding longer
 * than 7 bits or padding that is not all ones (RFC 7541 §5.2: a decoding error).
 */
export function huffmanDecode(data: Uint8Array): Uint8Array {
  // Every symbol is at least 5 bits long.
  const out = new Uint8Array(Math.floor((data.length * 8) / 5));
  let n = 0;
  let code = 0;
  let len = 0;
  for (let i = 0; i < data.length; i++) {
    const byte = data[i];
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >>> bit) & 1);
      len++;
      const count = countOf[len];
      if (count !== 0 && code - firstCode[len] < count && code >= firstCode[len]) {
        const sym = sorted[offsetOf[len] + code - firstCode[len]];
        if (sym === EOS) throw new Error("huffman: EOS in string");
        out[n++] = sym;
        code = 0;
        len = 0;
      } else if (len > 30) {
        throw new Error("huffman: invalid code");
      }
    }
  }
  if (len > 7 || code !== (1 << len) - 1) throw new Error("huffman: invalid padding");
  return out.subarray(0, n);
}
