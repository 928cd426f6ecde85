/**
 * etcd 3.7's `KV.RangeStream`: the answer to a Range as a stream of chunks,
 * each a disjoint, ordered slice of the kvs, with `header`, `more` and `count`
 * on the last one only, so that merging the chunks gives the Range answer.
 *
 * A list in key order is read from the backend a chunk at a time, every
 * chunk pinned to the first one's revision, so the stream never holds more
 * than about one chunk; other orders and filters need the whole result first
 * and are only sent in chunks.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import type { Backend, KeyValue, RangeRequest, RangeResult } from "../backend/types.ts";
import { type EncodedMessage, RangeEncoder, rangeStreamResponse } from "./range_codec.ts";

/** The first chunk's size in kvs, as etcd and upstream kine start. */
export const FIRST_CHUNK_KVS = 10;
/** Chunks grow or shrink toward this many encoded bytes. */
export const CHUNK_TARGET_BYTES = 1536 * 1024;
/** Upper bound of one read, so a stream of tiny keys does not hold up others for long. */
const MAX_CHUNK_KVS = 10_000;

/** True when the keys of `r` come in key order with no filter, so they can be read in slices. */
export function keyOrdered(r: RangeRequest): boolean {
  return r.end !== "" && !r.countOnly &&
    (r.sortOrder === "none" || (r.sortOrder === "ascend" && r.sortTarget === "key")) &&
    r.minModRevision <= 0 && r.maxModRevision <= 0 && r.minCreateRevision <= 0 &&
    r.maxCreateRevision <= 0;
}

/**
 * Chooses each chunk's size: {@link FIRST_CHUNK_KVS} first, then at most
 * twice the last one, toward {@link CHUNK_TARGET_BYTES} at the average size
 * of the kvs seen in the last chunk (shrinking at once when they are large).
 */
export class ChunkSizer {
  #next = FIRST_CHUNK_KVS;

  /** The number of kvs the next chunk should carry. */
  get next(): number {
    return this.#next;
  }

  /** Records a chunk of `kvs` kvs that encoded to `bytes` bytes. */
  record(kvs: number, bytes: number): void {
    if (kvs === 0) return;
    const fits = Math.max(1, Math.floor(CHUNK_TARGET_BYTES / Math.max(1, bytes / kvs)));
    this.#next = Math.min(fits, kvs * 2, MAX_CHUNK_KVS);
  }
}

/** Rough encoded size of one kv, to cut a read that came out larger than a chunk should be. */
function kvBytes(kv: KeyValue): number {
  return kv.key.length + kv.value.length + 32;
}

/**
 * Splits `kvs` into runs of at most {@link CHUNK_TARGET_BYTES} (at least one kv
 * each): a read sized from small kvs may reach large ones.
 */
function* runs(kvs: KeyValue[]): Generator<KeyValue[]> {
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < kvs.length; i++) {
    const size = kvBytes(kvs[i]);
    if (i > from && bytes + size > CHUNK_TARGET_BYTES) {
      yield kvs.slice(from, i);
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  yield kvs.slice(from);
}

function chunk(kvs: KeyValue[]): EncodedMessage {
  const encoder = new RangeEncoder();
  encoder.add(kvs);
  return rangeStreamResponse(encoder.kvsOnly());
}

function lastChunk(kvs: KeyValue[], revision: number, more: boolean, count: number) {
  const encoder = new RangeEncoder();
  encoder.add(kvs);
  return rangeStreamResponse(encoder.finish(revision, more, count));
}

/** The chunks of one read; the last of them carries `final` (header, more, count) if given. */
function* chunksOfRead(
  kvs: KeyValue[],
  sizer: ChunkSizer,
  final?: { revision: number; more: boolean; count: number },
): Generator<EncodedMessage> {
  sizer.record(kvs.length, kvs.reduce((n, kv) => n + kvBytes(kv), 0));
  const all = [...runs(kvs)];
  for (let i = 0; i < all.length; i++) {
    yield final && i === all.length - 1
      ? lastChunk(all[i], final.revision, final.more, final.count)
      : chunk(all[i]);
  }
}

/** Lets other requests in between chunks (SQLite answers synchronously). */
const yieldTurn = () => new Promise((resolve) => setImmediate(resolve));

/**
 * The chunks of a RangeStream, encoded. An error before the first chunk
 * (a compacted or future revision, a bad request) is thrown by the first
 * `next()`, so it reaches the client as the stream's status; a consumer that
 * stops iterating (the client cancelled) stops the reads.
 */
export async function* rangeStream(
  backend: Backend,
  request: RangeRequest,
): AsyncGenerator<EncodedMessage> {
  if (!keyOrdered(request)) {
    yield* chunksOf(await backend.range(request));
    return;
  }
  const sizer = new ChunkSizer();
  const limit = request.limit;
  let sent = 0;
  let header = 0;
  let pinned = request.revision;
  let key = request.key;
  for (;;) {
    const size = limit > 0 ? Math.min(sizer.next, limit - sent) : sizer.next;
    // The slice that reaches the limit counts the keys from its start (etcd's count).
    const last = limit > 0 && sent + size >= limit;
    const page: RangeResult = await backend.range({
      ...request,
      key,
      revision: pinned,
      limit: size,
      skipCount: !last,
      // Only the first read needs the freshness check; the rest read at its revision.
      serializable: request.serializable || header > 0,
    });
    if (header === 0) {
      header = page.revision;
      if (pinned <= 0) pinned = header;
    }
    if (last || !page.more || page.nextKey === undefined) {
      const count = last ? sent + page.count : sent + page.kvs.length;
      yield* chunksOfRead(page.kvs, sizer, { revision: header, more: last && page.more, count });
      return;
    }
    sent += page.kvs.length;
    key = page.nextKey;
    yield* chunksOfRead(page.kvs, sizer);
    await yieldTurn();
  }
}

/** A result read whole (sorted or filtered), sent in chunks all the same. */
async function* chunksOf(result: RangeResult): AsyncGenerator<EncodedMessage> {
  const sizer = new ChunkSizer();
  let from = 0;
  while (result.kvs.length - from > sizer.next) {
    const to = from + sizer.next;
    yield* chunksOfRead(result.kvs.slice(from, to), sizer);
    from = to;
    await yieldTurn();
  }
  yield* chunksOfRead(result.kvs.slice(from), sizer, result);
}
