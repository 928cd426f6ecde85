/**
 * Values of rows by id, within a byte budget: those the watch hub published
 * (every write, this process's and others') and those Ranges read from the
 * store. A row never changes once written, so an entry is never stale: a list
 * (kube's Lists, page after page of the keys it just wrote) takes its values
 * from memory instead of a store query, as etcd takes them from its
 * memory-mapped file. The oldest entries go first when the budget is
 * reached; a compacted row's value simply ages out.
 *
 * The values are copied into one ring buffer: a Uint8Array of its own per
 * value costs V8 about 640 bytes besides its data (2.5× the value at 256 B),
 * the ring only a map slot and a 4-byte length.
 *
 * @module
 */
import type { KeyValue } from "../types.ts";
import { IdTable } from "./id_table.ts";

/** A value larger than this share of the budget is not kept: one would push out many. */
const LARGEST_SHARE = 64;
/** Each value's length goes before it in the ring, in this many bytes (little-endian). */
const HEADER = 4;

/** Row values by id in a ring of `budget` bytes, the oldest overwritten first. */
export class ValueCache {
  readonly #ring: Uint8Array;
  /** id → offset of its entry (length, then value). */
  readonly #where = new IdTable();
  /** Ids in the order they were written into the ring; those before `#head` are gone. */
  #order: number[] = [];
  /** The offset of each id of `#order`: eviction walks these without a map lookup. */
  #orderAt: number[] = [];
  #head = 0;
  /** Where the next entry goes. */
  #at = 0;

  constructor(readonly budget: number) {
    this.#ring = new Uint8Array(budget);
  }

  /** Values held. */
  get size(): number {
    return this.#where.size;
  }

  #length(offset: number): number {
    const r = this.#ring;
    return r[offset] | (r[offset + 1] << 8) | (r[offset + 2] << 16) | (r[offset + 3] << 24);
  }

  /**
   * A copy of the value of row `id`, if held: the ring's bytes are
   * overwritten later, while the caller may keep the value.
   */
  get(id: number): Uint8Array | undefined {
    const offset = this.#where.get(id);
    if (offset === undefined) return undefined;
    return this.#ring.slice(offset + HEADER, offset + HEADER + this.#length(offset));
  }

  /**
   * Sets the value of each kv whose row (`modRevision`) it holds, copied out
   * of the ring into one new buffer (one allocation, not one per value);
   * returns the kvs it does not hold.
   */
  fill(kvs: KeyValue[]): KeyValue[] {
    const missing: KeyValue[] = [];
    const held: KeyValue[] = [];
    const offsets: number[] = [];
    let total = 0;
    for (let k = 0; k < kvs.length; k++) {
      const kv = kvs[k];
      const offset = this.#where.get(kv.modRevision);
      if (offset === undefined) missing.push(kv);
      else {
        held.push(kv);
        offsets.push(offset);
        total += HEADER + this.#length(offset);
      }
    }
    // Entries are copied with their length headers, so that values lying one after the other in
    // the ring (a list's, written or read in key order) go out in one copy per run, not per value.
    const out = new Uint8Array(total);
    const ring = this.#ring;
    let at = 0;
    let i = 0;
    while (i < held.length) {
      let end = offsets[i] + HEADER + this.#length(offsets[i]);
      let j = i + 1;
      while (j < held.length && offsets[j] === end) end += HEADER + this.#length(offsets[j++]);
      out.set(ring.subarray(offsets[i], end), at);
      for (; i < j; i++) {
        const length = this.#length(offsets[i]);
        held[i].value = out.subarray(at + HEADER, at + HEADER + length);
        at += HEADER + length;
      }
    }
    return missing;
  }

  /** Keeps the value of row `id`, overwriting the oldest values it needs the room of. */
  add(id: number, value: Uint8Array): void {
    const length = value.length;
    if (length * LARGEST_SHARE > this.budget || this.#where.has(id)) return;
    const room = HEADER + length;
    const order = this.#order;
    const orderAt = this.#orderAt;
    let head = this.#head;
    if (this.#at + room > this.budget) {
      // The tail of the ring is too short: what is left there is the oldest, and goes.
      while (head < order.length && orderAt[head] >= this.#at) this.#where.delete(order[head++]);
      this.#at = 0;
    }
    const at = this.#at;
    const end = at + room;
    // The oldest values lie just ahead of `#at`: those the new one overlaps go.
    while (head < order.length) {
      const offset = orderAt[head];
      if (offset < at || offset >= end) break;
      this.#where.delete(order[head++]);
    }
    this.#head = head;
    const r = this.#ring;
    r[at] = length & 0xff;
    r[at + 1] = (length >>> 8) & 0xff;
    r[at + 2] = (length >>> 16) & 0xff;
    r[at + 3] = length >>> 24;
    r.set(value, at + HEADER);
    this.#where.set(id, at);
    order.push(id);
    orderAt.push(at);
    this.#at = end;
    if (head > 4096 && head * 2 > order.length) {
      this.#order = order.slice(head);
      this.#orderAt = orderAt.slice(head);
      this.#head = 0;
    }
  }
}
