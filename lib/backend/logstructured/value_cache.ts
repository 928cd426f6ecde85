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
 * the ring only a map slot.
 *
 * @module
 */
import type { KeyValue } from "../types.ts";

/** A value larger than this share of the budget is not kept: one would push out many. */
const LARGEST_SHARE = 64;
/** Lengths are packed below offsets in one number: a value kept is shorter than this. */
const LENGTH_SPAN = 2 ** 20;

/** Row values by id in a ring of `budget` bytes, the oldest overwritten first. */
export class ValueCache {
  readonly #ring: Uint8Array;
  /** id → offset · {@link LENGTH_SPAN} + length. */
  readonly #where = new Map<number, number>();
  /** Ids in the order they were written into the ring; those before `#head` are gone. */
  #order: number[] = [];
  #head = 0;
  /** Where the next value goes. */
  #at = 0;

  constructor(readonly budget: number) {
    this.#ring = new Uint8Array(budget);
  }

  /** Values held. */
  get size(): number {
    return this.#where.size;
  }

  /**
   * A copy of the value of row `id`, if held: the ring's bytes are
   * overwritten later, while the caller may keep the value.
   */
  get(id: number): Uint8Array | undefined {
    const w = this.#where.get(id);
    if (w === undefined) return undefined;
    const offset = Math.floor(w / LENGTH_SPAN);
    return this.#ring.slice(offset, offset + w % LENGTH_SPAN);
  }

  /**
   * Sets the value of each kv whose row (`modRevision`) it holds, copied out
   * of the ring into one new buffer (one allocation, not one per value);
   * returns the kvs it does not hold.
   */
  fill(kvs: KeyValue[]): KeyValue[] {
    const missing: KeyValue[] = [];
    const held: KeyValue[] = [];
    const where: number[] = [];
    let total = 0;
    for (const kv of kvs) {
      const w = this.#where.get(kv.modRevision);
      if (w === undefined) missing.push(kv);
      else {
        held.push(kv);
        where.push(w);
        total += w % LENGTH_SPAN;
      }
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (let i = 0; i < held.length; i++) {
      const offset = Math.floor(where[i] / LENGTH_SPAN);
      const length = where[i] % LENGTH_SPAN;
      out.set(this.#ring.subarray(offset, offset + length), at);
      held[i].value = out.subarray(at, at + length);
      at += length;
    }
    return missing;
  }

  /** Keeps the value of row `id`, overwriting the oldest values it needs the room of. */
  add(id: number, value: Uint8Array): void {
    const length = value.length;
    if (length * LARGEST_SHARE > this.budget || length >= LENGTH_SPAN || this.#where.has(id)) {
      return;
    }
    // An empty value takes a byte too, so that no two values start at one offset.
    const room = Math.max(length, 1);
    if (this.#at + room > this.budget) {
      // The tail of the ring is too short: what is left there is the oldest, and goes.
      while (this.#head < this.#order.length && this.#offset(this.#order[this.#head]) >= this.#at) {
        this.#where.delete(this.#order[this.#head++]);
      }
      this.#at = 0;
    }
    const end = this.#at + room;
    // The oldest values lie just ahead of `#at`: those the new one overlaps go.
    while (this.#head < this.#order.length) {
      const old = this.#order[this.#head];
      const offset = this.#offset(old);
      if (offset < this.#at || offset >= end) break;
      this.#where.delete(old);
      this.#head++;
    }
    this.#ring.set(value, this.#at);
    this.#where.set(id, this.#at * LENGTH_SPAN + length);
    this.#order.push(id);
    this.#at = end;
    if (this.#head > 4096 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head);
      this.#head = 0;
    }
  }

  #offset(id: number): number {
    return Math.floor(this.#where.get(id)! / LENGTH_SPAN);
  }
}
