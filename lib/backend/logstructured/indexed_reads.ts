/**
 * Range answered from the process's {@link KeyIndex}: the index says which
 * row of each key is live at the read revision, and only the values returned
 * are read from the store, by row id. The index follows the watch hub's
 * published rows, so it is exactly as current as the hub's position.
 *
 * @module
 */
import { FROM_KEY, type KeyValue, type RangeRequest, type RangeResult } from "../types.ts";
import { APISERVER_COMPACT_KEY, presentKv, redirectKey } from "./compact_key.ts";
import { isInternal } from "./events.ts";
import { type IndexedRow, KeyIndex } from "./key_index.ts";
import type { IndexReader, LogRow, MaybePromise, Revisions } from "./log.ts";
import { keep, needsFullScan, SORT_KEYS } from "./range.ts";
import type { ValueCache } from "./value_cache.ts";
import type { Event } from "../types.ts";

/** A row a Range chose is no longer in the store: compaction overtook the read. */
export class RowGone extends Error {
  constructor() {
    super("a row the index named was compacted meanwhile");
  }
}

const EMPTY = new Uint8Array(0);
/** Rows per query of the start-up scan: metadata only, so large batches stay small. */
const SCAN_BATCH = 10_000;
/** Keys trimmed per slice after a compaction: well under a millisecond of work. */
const TRIM_SLICE = 4096;
/** Trim work between two turns of the event loop, ms. */
const TRIM_TURN_MS = 5;

function fromRow(row: LogRow): IndexedRow {
  return {
    key: row.name,
    mod: row.id,
    create: row.created ? row.id : row.createRevision,
    version: row.version,
    lease: row.lease,
    deleted: row.deleted,
  };
}

function fromEvent(e: Event): IndexedRow {
  const kv = e.kv;
  return {
    key: kv.key,
    mod: kv.modRevision,
    create: kv.createRevision,
    version: kv.version,
    lease: kv.lease,
    deleted: e.type === "delete",
  };
}

/** The key index of one log and the Range logic over it. */
export class IndexedReads {
  #index = new KeyIndex();
  #compact = 0;
  /** A compact revision was learnt that a walk under way may have passed some keys for. */
  #trimWanted = false;
  #trimming?: Promise<void>;

  /** `cache` keeps values read before, where reading them again costs a store query. */
  constructor(
    private readonly reader: IndexReader & { revisions(): MaybePromise<Revisions> },
    private readonly cache?: ValueCache,
  ) {}

  /** The compact revision the index was last trimmed to. */
  get compact(): number {
    return this.#compact;
  }

  /** Keys and revisions held, for the README's memory figures and tests. */
  get stats(): { keys: number; revisions: number } {
    return { keys: this.#index.size, revisions: this.#index.revisions() };
  }

  /**
   * Builds the index from the store's rows up to `upTo`. A compaction that
   * commits during the scan may have deleted rows it had yet to read (a
   * tombstone whose key it saw live), so the scan is repeated until the
   * compact revision stayed put across it.
   */
  async rebuild(upTo: number): Promise<void> {
    for (;;) {
      const before = (await this.reader.revisions()).compact;
      const index = new KeyIndex();
      let after = 0;
      for (;;) {
        const rows = await this.reader.rows(after, upTo, SCAN_BATCH);
        for (const row of rows) if (!isInternal(row)) index.apply(fromRow(row));
        if (rows.length < SCAN_BATCH) break;
        after = rows[rows.length - 1].id;
      }
      if ((await this.reader.revisions()).compact !== before) continue;
      this.#index = index;
      this.#compact = 0;
      this.compacted(before);
      await this.trimmed();
      return;
    }
  }

  /**
   * Live kvs (values left empty) of `[start, end)` at `revision` in key
   * order, at most `limit` (0 = all); `end` "" is the key `start` alone.
   */
  list(start: string, end: string | null, revision: number, limit: number): KeyValue[] {
    if (end !== "") return this.#index.list(start, end, revision, limit);
    const kv = this.#index.get(start, revision);
    return kv ? [kv] : [];
  }

  /** Live keys of `[start, end)` at `revision`. */
  count(start: string, end: string | null, revision: number): number {
    return this.#index.count(start, end, revision);
  }

  /** The key's newest revision in the index (see `KeyIndex.newest`); read-only. */
  newest(key: string): Readonly<IndexedRow> | undefined {
    return this.#index.newest(key);
  }

  /** The value of row `id` if the value cache holds it; read-only. */
  cachedValue(id: number): Uint8Array | undefined {
    return this.cache?.get(id);
  }

  /** Applies a batch the watch hub published. */
  apply(events: Event[]): void {
    const cache = this.cache;
    for (const e of events) {
      this.#index.apply(fromEvent(e));
      // A value just written is the likeliest to be read next: kube Lists what it writes.
      if (cache && e.type === "put") cache.add(e.kv.modRevision, e.kv.value);
    }
    // Rows the poll loop read before another process compacted past them (it holds rows above a
    // missing id) come in below the compact revision: trimmed again, as the store trimmed them.
    if (events.length > 0 && events[0].kv.modRevision <= this.#compact) this.#wantTrim();
  }

  /**
   * Learns the store's compact revision; a higher one trims the index, a
   * slice at a time between other tasks (see {@link #trim}).
   */
  compacted(revision: number): void {
    if (revision <= this.#compact) return;
    this.#compact = revision;
    this.#wantTrim();
  }

  /** Starts a walk of the index, or one more after the walk under way. */
  #wantTrim(): void {
    this.#trimWanted = true;
    this.#trimming ??= this.#trim().finally(() => this.#trimming = undefined);
  }

  /** Resolves once the index is trimmed to the compact revision last learnt. */
  async trimmed(): Promise<void> {
    while (this.#trimming) await this.#trimming;
  }

  /**
   * Walks the whole index in slices of {@link TRIM_SLICE} keys, giving the
   * event loop a turn every {@link TRIM_TURN_MS}: a full walk of 1,000,000
   * keys at once would hold every request up for tens of ms, and a compaction
   * in batches raises the compact revision hundreds of times. A revision
   * learnt mid-walk applies to the slices after it, and the walk starts over
   * once done.
   */
  async #trim(): Promise<void> {
    while (this.#trimWanted) {
      this.#trimWanted = false;
      let from: string | null = "";
      let turn = performance.now();
      while (from !== null) {
        from = this.#index.trimSome(this.#compact, from, TRIM_SLICE);
        if (from !== null && performance.now() - turn >= TRIM_TURN_MS) {
          await new Promise((resolve) => setTimeout(resolve, 0));
          turn = performance.now();
        }
      }
    }
  }

  /**
   * etcd's Range at `revision` (already checked against the compact and
   * current revisions), with `header` as the response's revision. Throws
   * {@link RowGone} when a value it needs was compacted meanwhile.
   */
  async range(
    r: RangeRequest,
    revision: number,
    header: number,
    knownCount?: number,
  ): Promise<RangeResult> {
    const start = r.end === "" ? redirectKey(r.key) : r.key;
    const end = r.end === FROM_KEY ? null : r.end;
    const full = needsFullScan(r);
    const limited = !full && r.limit > 0;
    // Everything the index says is read here, before the first await.
    let kvs: KeyValue[];
    let count: number | undefined;
    if (r.end === "") {
      const kv = this.#index.get(start, revision);
      kvs = kv ? [kv] : [];
    } else if (r.countOnly && !full) {
      count = this.#index.count(start, end, revision);
      kvs = [];
    } else {
      kvs = this.#index.list(start, end, revision, limited ? r.limit + 1 : 0);
    }
    let more = false;
    let nextKey: string | undefined;
    if (full) {
      // etcd counts the keys of the range before its filters.
      count = kvs.length;
      kvs = kvs.filter((kv) => keep(r, kv));
      const sortsByValue = r.sortOrder !== "none" && r.sortTarget === "value";
      if (!r.countOnly && (sortsByValue || !r.keysOnly)) await this.#values(kvs);
      if (r.sortOrder !== "none") {
        const cmp = SORT_KEYS[r.sortTarget];
        kvs.sort(r.sortOrder === "descend" ? (a, b) => cmp(b, a) : cmp);
      }
      if (r.limit > 0 && kvs.length > r.limit) {
        kvs = kvs.slice(0, r.limit);
        more = true;
      }
    } else if (limited && kvs.length > r.limit) {
      kvs = kvs.slice(0, r.limit);
      more = true;
      // The stored name: the apiserver's compaction row is presented under another.
      nextKey = kvs[r.limit - 1].key + "\0";
      if (!r.skipCount) count = knownCount ?? this.#index.count(start, end, revision);
    }
    count ??= kvs.length;
    if (r.countOnly) return { revision: header, kvs: [], count, more };
    if (!full && !r.keysOnly) await this.#values(kvs);
    const apiserver = kvs.findIndex((kv) => kv.key === APISERVER_COMPACT_KEY);
    if (apiserver >= 0) {
      // Its version is kept in its value, which a keys-only read did not need.
      const kv = kvs[apiserver];
      if (r.keysOnly) await this.#values([kv]);
      const shown = presentKv(kv);
      kvs[apiserver] = r.keysOnly ? { ...shown, value: EMPTY } : shown;
    }
    if (full && r.keysOnly) {
      for (let i = 0; i < kvs.length; i++) kvs[i] = { ...kvs[i], value: EMPTY };
    }
    return { revision: header, kvs, count, more, nextKey };
  }

  /** Reads the values of `kvs` by row id into them, those the cache holds from it. */
  async #values(kvs: KeyValue[]): Promise<void> {
    const cache = this.cache;
    const missing = cache ? cache.fill(kvs) : kvs;
    if (missing.length === 0) return;
    const ids = new Array<number>(missing.length);
    for (let i = 0; i < missing.length; i++) ids[i] = missing[i].modRevision;
    const values = await this.reader.values(ids);
    for (let i = 0; i < missing.length; i++) {
      const kv = missing[i];
      const value = values.get(kv.modRevision);
      if (value === undefined) throw new RowGone();
      kv.value = value;
      cache?.add(kv.modRevision, value);
    }
  }
}
