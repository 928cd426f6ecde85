/**
 * The check at the end of a copy: every live key's (key, create, mod,
 * version, lease, value) at one revision, hashed in key order (CRC-32C, as
 * `HashKV`), and counted, on either side.
 */
import { setImmediate } from "node:timers";
import { Crc32c, hashKv } from "../backend/hash.ts";
import { FROM_KEY, type KeyValue, type MvccStore, plainRange } from "../backend/types.ts";

/** One page of live keys in key order from `start`; `nextKey` continues it. */
export type KvPager = (
  start: string,
  revision: number,
  limit: number,
  keysOnly?: boolean,
) => Promise<{ kvs: KeyValue[]; nextKey?: string }>;

export interface Digest {
  revision: number;
  keys: number;
  /** CRC-32C, 8 hex digits. */
  hash: string;
}

const PAGE = 1000;

/**
 * Where a walk over every key starts: `\0`, the lowest key (keys are bytes;
 * reads come from the key index, in byte order on every engine). kine's own
 * keys sort after every client key, so the walk ends with them.
 */
export const FIRST_KEY = "\0";

/** The digest of the live keys a pager reads at `revision`. */
export async function digest(pages: KvPager, revision: number): Promise<Digest> {
  const crc = new Crc32c();
  const scratch = new DataView(new ArrayBuffer(32));
  let keys = 0;
  let start: string | undefined = FIRST_KEY;
  while (start !== undefined) {
    const page: { kvs: KeyValue[]; nextKey?: string } = await pages(start, revision, PAGE);
    for (const kv of page.kvs) hashKv(crc, kv, scratch);
    keys += page.kvs.length;
    start = page.nextKey;
    // SQLite answers synchronously: let other work in between pages.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return { revision, keys, hash: crc.digest().toString(16).padStart(8, "0") };
}

/** Pages of a kine backend's key space. */
export function backendPager(backend: MvccStore): KvPager {
  return async (start, revision, limit, keysOnly = false) => {
    const r = await backend.range({
      ...plainRange(start, FROM_KEY),
      revision,
      limit,
      keysOnly,
      skipCount: true,
    });
    return { kvs: r.kvs, nextKey: r.more ? r.nextKey : undefined };
  };
}
