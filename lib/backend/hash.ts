/**
 * etcd's `HashKV` over any {@link MvccStore}: a CRC-32C (Castagnoli, as etcd
 * hashes) over every live key at one revision, read a page at a time in key
 * order. Two servers on one database, or one server across restarts, give the
 * same hash for the same revision.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import { compacted, futureRevision } from "./errors.ts";
import { keyToBytes } from "./keys.ts";
import {
  FROM_KEY,
  type KeyValue,
  type KvHash,
  type Maintenance,
  type MvccStore,
  plainRange,
} from "./types.ts";

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** A running CRC-32C. */
export class Crc32c {
  #crc = 0xffffffff;

  update(bytes: Uint8Array): this {
    let c = this.#crc;
    for (let i = 0; i < bytes.length; i++) c = TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    this.#crc = c;
    return this;
  }

  /** The checksum of everything so far, as an unsigned 32-bit number. */
  digest(): number {
    return (this.#crc ^ 0xffffffff) >>> 0;
  }
}

const PAGE = 1000;

/** Key length and key, value length and value, then the four numbers as 64-bit little-endian. */
export function hashKv(crc: Crc32c, kv: KeyValue, scratch: DataView): void {
  const key = keyToBytes(kv.key);
  scratch.setUint32(0, key.length, true);
  crc.update(new Uint8Array(scratch.buffer, 0, 4)).update(key);
  scratch.setUint32(0, kv.value.length, true);
  crc.update(new Uint8Array(scratch.buffer, 0, 4)).update(kv.value);
  [kv.createRevision, kv.modRevision, kv.version, kv.lease].forEach((n, i) =>
    scratch.setBigInt64(i * 8, BigInt(n), true)
  );
  crc.update(new Uint8Array(scratch.buffer, 0, 32));
}

/** Hashes the live keys of `backend` at `revision` (0 = the current one). */
export async function hashKeySpace(
  backend: MvccStore & Maintenance,
  revision: number,
): Promise<KvHash> {
  const status = await backend.status();
  if (revision > status.revision) throw futureRevision();
  if (revision > 0 && revision < status.compactRevision) throw compacted();
  const at = revision > 0 ? revision : status.revision;
  const crc = new Crc32c();
  const scratch = new DataView(new ArrayBuffer(32));
  let key = "\0";
  for (;;) {
    const page = await backend.range({
      ...plainRange(key, FROM_KEY),
      revision: at,
      limit: PAGE,
      skipCount: true,
      // Pinned to a revision status() read from the store: no page needs a ReadIndex lookup.
      serializable: true,
    });
    for (const kv of page.kvs) hashKv(crc, kv, scratch);
    if (!page.more || page.nextKey === undefined) break;
    key = page.nextKey;
    // SQLite answers synchronously: let other requests in between pages.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return {
    hash: crc.digest(),
    revision: at,
    compactRevision: status.compactRevision,
    currentRevision: status.revision,
  };
}
