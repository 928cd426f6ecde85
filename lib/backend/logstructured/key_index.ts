/**
 * etcd's `treeIndex` for the revision log: every key → its revisions not yet
 * compacted, in key order, so that a Range finds the latest live revision of
 * each key at a revision without reading the store; only the values it returns
 * are fetched (by row id). Fed in revision order by the watch hub's published
 * rows, rebuilt from the store at start-up, trimmed by compaction.
 *
 * Keys sit in sorted blocks of at most {@link BLOCK} entries (a one-level
 * B-tree): finding a key is two binary searches, inserting one moves at most a
 * block's pointers, and a range walks the blocks in order.
 *
 * @module
 */
import { compareKeys } from "../keys.ts";
import type { KeyValue } from "../types.ts";

/** Entries per block before it splits in two. */
const BLOCK = 512;
/** Numbers per older revision in {@link KeyEntry.older}: mod, create, version, lease. */
const STRIDE = 4;
const EMPTY = new Uint8Array(0);

/** One revision of a key as the index applies it. */
export interface IndexedRow {
  key: string;
  /** The row id: the revision that wrote it. */
  mod: number;
  create: number;
  version: number;
  lease: number;
  deleted: boolean;
}

/**
 * One key's revisions: the newest inline (most keys have one), older ones
 * oldest first in a flat list. A version of 0 marks a tombstone (a live
 * revision has version ≥ 1).
 */
class KeyEntry {
  older: number[] | null = null;
  constructor(
    readonly key: string,
    public mod: number,
    public create: number,
    public version: number,
    public lease: number,
  ) {}

  push(row: IndexedRow): void {
    (this.older ??= []).push(this.mod, this.create, this.version, this.lease);
    this.mod = row.mod;
    this.create = row.create;
    this.version = row.deleted ? 0 : row.version;
    this.lease = row.lease;
  }

  /**
   * The key's state at `revision` as a KeyValue without its value, or
   * undefined where it has no live revision then.
   */
  at(revision: number): KeyValue | undefined {
    if (this.mod <= revision) return this.#kv(this.mod, this.create, this.version, this.lease);
    const o = this.older;
    if (!o) return undefined;
    for (let i = o.length - STRIDE; i >= 0; i -= STRIDE) {
      if (o[i] <= revision) return this.#kv(o[i], o[i + 1], o[i + 2], o[i + 3]);
    }
    return undefined;
  }

  /** True when `at(revision)` would return a kv. */
  liveAt(revision: number): boolean {
    if (this.mod <= revision) return this.version !== 0;
    const o = this.older;
    if (!o) return false;
    for (let i = o.length - STRIDE; i >= 0; i -= STRIDE) {
      if (o[i] <= revision) return o[i + 2] !== 0;
    }
    return false;
  }

  #kv(mod: number, create: number, version: number, lease: number): KeyValue | undefined {
    if (version === 0) return undefined;
    return {
      key: this.key,
      value: EMPTY,
      createRevision: create,
      modRevision: mod,
      version,
      lease,
    };
  }

  /**
   * Drops what compaction at `revision` removes from the store: every
   * revision superseded at or before it, and a tombstone at or before it.
   * Returns false when nothing of the key is left.
   */
  trim(revision: number): boolean {
    const o = this.older;
    if (this.mod <= revision) {
      this.older = null;
      return this.version !== 0;
    }
    if (!o) return true;
    // The newest older revision at or before `revision` survives unless it is a tombstone.
    for (let i = o.length - STRIDE; i >= 0; i -= STRIDE) {
      if (o[i] > revision) continue;
      const from = o[i + 2] === 0 ? i + STRIDE : i;
      if (from > 0) this.older = from < o.length ? o.slice(from) : null;
      break;
    }
    return true;
  }

  /** Revisions held (one per row of the key the store still has). */
  get revisions(): number {
    return 1 + (this.older ? this.older.length / STRIDE : 0);
  }
}

type Compare = (a: string, b: string) => number;

const native: Compare = (a, b) => a < b ? -1 : a > b ? 1 : 0;
/** A code unit where JS string order and UTF-8 byte order can part (see keys.ts). */
const WIDE = /[\uD800-\uFFFF]/;

/**
 * The comparison to search for `probe` with: JS string order differs from byte
 * order only where both strings hold a surrogate or U+E000–U+FFFF at the first
 * difference, so a probe without one compares natively (several times faster).
 */
function orderFor(probe: string): Compare {
  return WIDE.test(probe) ? compareKeys : native;
}

/** First index in `a` whose key is ≥ `key` (or > `key` when `after`). */
function bisect(a: KeyEntry[], key: string, cmp: Compare): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(a[mid].key, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The key index of one process: see the module doc. */
export class KeyIndex {
  #blocks: KeyEntry[][] = [[]];
  /**
   * Per block: how many keys are live at their newest revision, and the
   * newest revision it holds. A count at or above that revision takes a
   * block's number instead of visiting its keys.
   */
  #live: number[] = [0];
  #top: number[] = [0];
  #keys = 0;

  /** Keys held (live or with a tombstone not yet compacted). */
  get size(): number {
    return this.#keys;
  }

  /** The block that holds `key` or would: the first whose last key is ≥ it (else the last). */
  #block(key: string, cmp: Compare): number {
    const blocks = this.#blocks;
    let lo = 0, hi = blocks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const b = blocks[mid];
      if (cmp(b[b.length - 1].key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Where `key` is or would be: its block and its place in it. */
  #seek(key: string): [number, number] {
    const cmp = orderFor(key);
    const bi = this.#block(key, cmp);
    return [bi, bisect(this.#blocks[bi], key, cmp)];
  }

  /**
   * Applies one row; rows come in revision order. A row at or below the
   * key's newest revision is already applied (a start-up scan that overlaps
   * the stream) and is ignored.
   */
  apply(row: IndexedRow): void {
    const [bi, i] = this.#seek(row.key);
    const block = this.#blocks[bi];
    if (i < block.length && block[i].key === row.key) {
      const entry = block[i];
      if (row.mod <= entry.mod) return;
      const was = entry.version !== 0 ? 1 : 0;
      entry.push(row);
      this.#live[bi] += (entry.version !== 0 ? 1 : 0) - was;
      this.#top[bi] = Math.max(this.#top[bi], row.mod);
      return;
    }
    // A key seen first as a tombstone (its earlier rows compacted away) has nothing to show.
    if (row.deleted) return;
    block.splice(i, 0, new KeyEntry(row.key, row.mod, row.create, row.version, row.lease));
    this.#keys++;
    this.#live[bi]++;
    this.#top[bi] = Math.max(this.#top[bi], row.mod);
    if (block.length > BLOCK) {
      this.#blocks.splice(bi + 1, 0, block.splice(BLOCK >>> 1));
      this.#live.splice(bi + 1, 0, 0);
      this.#top.splice(bi + 1, 0, 0);
      this.#tally(bi);
      this.#tally(bi + 1);
    }
  }

  /** Sets block `bi`'s live keys and newest revision from its entries. */
  #tally(bi: number): void {
    let live = 0, top = 0;
    for (const e of this.#blocks[bi]) {
      if (e.version !== 0) live++;
      if (e.mod > top) top = e.mod;
    }
    this.#live[bi] = live;
    this.#top[bi] = top;
  }

  /** The key's live revision at `revision`, without its value. */
  get(key: string, revision: number): KeyValue | undefined {
    const [bi, i] = this.#seek(key);
    const e = this.#blocks[bi][i];
    return e?.key === key ? e.at(revision) : undefined;
  }

  /**
   * The key's newest revision held (a tombstone's `version` is 0), without
   * copying it out of the index; undefined for a key the index lacks.
   */
  newest(key: string): Readonly<IndexedRow> | undefined {
    const [bi, i] = this.#seek(key);
    const e = this.#blocks[bi][i];
    if (e?.key !== key) return undefined;
    return {
      key,
      mod: e.mod,
      create: e.create,
      version: e.version,
      lease: e.lease,
      deleted: e.version === 0,
    };
  }

  /**
   * Calls `visit` for each key of `[start, end)` (`end` null: no upper
   * bound) in key order until it returns false.
   */
  #walk(start: string, end: string | null, visit: (e: KeyEntry) => boolean): void {
    this.#spans(start, end, (block, from, to) => {
      for (let i = from; i < to; i++) if (!visit(block[i])) return false;
      return true;
    });
  }

  /**
   * Calls `visit` for each block's part of `[start, end)`: block `bi`'s
   * entries `from` to `to` (exclusive), in key order, until it returns false.
   */
  #spans(
    start: string,
    end: string | null,
    visit: (block: KeyEntry[], from: number, to: number, bi: number) => boolean,
  ): void {
    const blocks = this.#blocks;
    let [bi, i] = this.#seek(start);
    const [be, ie] = end === null ? [blocks.length, 0] : this.#seek(end);
    for (; bi < be || (bi === be && i < ie); i = 0, bi++) {
      const block = blocks[bi];
      if (!visit(block, i, bi === be ? ie : block.length, bi)) return;
    }
  }

  /**
   * Live kvs (values left empty) of `[start, end)` at `revision` in key
   * order, at most `limit` of them (0 = all).
   */
  list(start: string, end: string | null, revision: number, limit: number): KeyValue[] {
    const out: KeyValue[] = [];
    this.#walk(start, end, (e) => {
      const kv = e.at(revision);
      if (kv) out.push(kv);
      return limit <= 0 || out.length < limit;
    });
    return out;
  }

  /** Live keys of `[start, end)` at `revision`. */
  count(start: string, end: string | null, revision: number): number {
    let n = 0;
    this.#spans(start, end, (block, from, to, bi) => {
      if (from === 0 && to === block.length && this.#top[bi] <= revision) n += this.#live[bi];
      else for (let i = from; i < to; i++) if (block[i].liveAt(revision)) n++;
      return true;
    });
    return n;
  }

  /**
   * Applies compaction at `revision` (see {@link KeyEntry.trim}) to the blocks from the one holding
   * `from` on, until at least `keys` keys were visited; returns the key to go
   * on from, or null at the end. Trimming is idempotent, and reads at or above
   * the compact revision never see what it drops, so a large index is trimmed
   * a slice at a time with rows applied in between.
   */
  trimSome(revision: number, from: string, keys: number): string | null {
    const blocks = this.#blocks;
    let bi = from === "" ? 0 : this.#block(from, orderFor(from));
    for (let seen = 0; bi < blocks.length && seen < keys;) {
      const block = blocks[bi];
      seen += block.length;
      const kept = block.filter((e) => e.trim(revision));
      this.#keys -= block.length - kept.length;
      if (kept.length > 0 || blocks.length === 1) {
        blocks[bi] = kept;
        this.#tally(bi++);
      } else {
        blocks.splice(bi, 1);
        this.#live.splice(bi, 1);
        this.#top.splice(bi, 1);
      }
    }
    return blocks[bi]?.[0]?.key ?? null;
  }

  /** Revisions held over every key. */
  revisions(): number {
    let n = 0;
    for (const block of this.#blocks) for (const e of block) n += e.revisions;
    return n;
  }
}
