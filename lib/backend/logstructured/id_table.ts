/**
 * A hash table from row id to a small integer (the value cache's ring
 * offsets): open addressing with linear probing over typed arrays. A
 * `Map<number, number>` that keeps a fixed number of entries while ids come
 * and go rehashes into a new table every few thousand inserts; a 100k-key
 * list that passes its values through the cache allocated a fifth of its
 * garbage there.
 *
 * @module
 */

/** Slots hold id + 1: 0 marks an empty one. */
const EMPTY = 0;

/** Row id → int32, for non-negative integer ids. */
export class IdTable {
  #ids: Float64Array;
  #values: Int32Array;
  #shift: number;
  #mask: number;
  #size = 0;

  constructor(bits = 10) {
    this.#ids = new Float64Array(1 << bits);
    this.#values = new Int32Array(1 << bits);
    this.#shift = 32 - bits;
    this.#mask = (1 << bits) - 1;
  }

  /** Entries held. */
  get size(): number {
    return this.#size;
  }

  /** Fibonacci hashing: consecutive ids spread over the table. */
  #home(id: number): number {
    return Math.imul(id, 0x9e3779b1) >>> this.#shift;
  }

  /** The slot holding `id`, or -1. */
  #find(id: number): number {
    id++;
    const ids = this.#ids;
    for (let i = this.#home(id);; i = (i + 1) & this.#mask) {
      const k = ids[i];
      if (k === id) return i;
      if (k === EMPTY) return -1;
    }
  }

  get(id: number): number | undefined {
    const i = this.#find(id);
    return i < 0 ? undefined : this.#values[i];
  }

  has(id: number): boolean {
    return this.#find(id) >= 0;
  }

  set(id: number, value: number): void {
    if ((this.#size + 1) * 2 > this.#ids.length) this.#grow();
    this.#put(id + 1, value);
  }

  /** Puts `key` (an id + 1). */
  #put(id: number, value: number): void {
    const ids = this.#ids;
    let i = this.#home(id);
    while (ids[i] !== EMPTY && ids[i] !== id) i = (i + 1) & this.#mask;
    if (ids[i] === EMPTY) this.#size++;
    ids[i] = id;
    this.#values[i] = value;
  }

  /** Removes `id`, shifting back the entries after it that probed past its slot. */
  delete(id: number): void {
    let hole = this.#find(id);
    if (hole < 0) return;
    const ids = this.#ids;
    const values = this.#values;
    const mask = this.#mask;
    for (let j = (hole + 1) & mask; ids[j] !== EMPTY; j = (j + 1) & mask) {
      const home = this.#home(ids[j]);
      // The entry at j may fill the hole only if its home is not cyclically within (hole, j].
      const stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
      if (stays) continue;
      ids[hole] = ids[j];
      values[hole] = values[j];
      hole = j;
    }
    ids[hole] = EMPTY;
    this.#size--;
  }

  #grow(): void {
    const ids = this.#ids;
    const values = this.#values;
    const bits = 32 - this.#shift + 1;
    this.#ids = new Float64Array(1 << bits);
    this.#values = new Int32Array(1 << bits);
    this.#shift = 32 - bits;
    this.#mask = (1 << bits) - 1;
    this.#size = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== EMPTY) this.#put(ids[i], values[i]);
  }
}
