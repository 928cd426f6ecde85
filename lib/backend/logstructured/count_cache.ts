import type { RangeRequest, RangeResult } from "../types.ts";

const SIZE = 64;

/**
 * Remembers the count a limited list will need for its next page. Paging at a
 * pinned revision (kube's continue tokens: last key + "\0") asks, page after
 * page, for the live keys from the next start key; that is the previous
 * page's count less the keys it returned, so only the first page counts rows.
 */
export class CountCache {
  readonly #entries = new Map<string, number>();

  #key(start: string, end: string, revision: number): string {
    return `${revision}\u0000${end}\u0000${start}`;
  }

  /** The count for a request that continues a remembered page, if any. */
  take(r: RangeRequest): number | undefined {
    if (r.revision <= 0 || r.limit <= 0) return undefined;
    return this.#entries.get(this.#key(r.key, r.end, r.revision));
  }

  /** Remembers what the page after `result` will count. */
  remember(r: RangeRequest, result: RangeResult): void {
    const next = result.nextKey;
    // A page read without its count (skipCount) has nothing to hand on.
    if (!result.more || r.limit <= 0 || r.skipCount || next === undefined) return;
    const revision = r.revision > 0 ? r.revision : result.revision;
    if (this.#entries.size >= SIZE) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(this.#key(next, r.end, revision), result.count - result.kvs.length);
  }
}
