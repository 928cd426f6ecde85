/**
 * `--to etcd://…`: leaving kine for etcd. etcd assigns its own revisions, so
 * only the latest value of every live key is copied (history, create and mod
 * revisions and versions start afresh); leases are granted anew with their
 * remaining TTL and their keys attached. kine's own auth row stays behind.
 */
import { FIRST_KEY, type KvPager } from "./digest.ts";
import type { EtcdConnection } from "./etcd_client.ts";
import { etcdPage } from "./etcd_client.ts";
import { MigrateError } from "./copy.ts";
import type { Progress } from "./progress.ts";
import type { MigrateSource } from "./source.ts";
import { isReserved, keyToBytes } from "../backend/keys.ts";

/** etcd's default `--max-txn-ops`. */
const TXN_OPS = 128;
const PAGE = 1000;

/** Refuses an etcd that holds keys. */
export async function checkEtcdEmpty(etcd: EtcdConnection, name: string): Promise<void> {
  const r = await etcd.kv("Range", {
    key: keyToBytes(FIRST_KEY),
    range_end: keyToBytes("\0"),
    count_only: true,
  });
  if (Number(r.count) > 0) {
    throw new MigrateError(
      `target ${name} is not empty (${r.count} keys): kine migrate copies into an empty store`,
    );
  }
}

/** Copies the live keys at `revision` and their leases; returns how many keys. */
export async function copyToEtcd(
  source: MigrateSource,
  etcd: EtcdConnection,
  revision: number,
  progress: Progress,
  stopped: () => boolean,
): Promise<number> {
  const leases = new Map<number, string>();
  const now = Date.now();
  for (const l of await source.leases()) {
    const remaining = Math.ceil((l.expiresAt - now) / 1000);
    if (remaining <= 0) continue;
    const granted = await etcd.lease("LeaseGrant", { TTL: remaining });
    leases.set(l.id, granted.ID);
  }
  let keys = 0;
  let start: string | undefined = FIRST_KEY;
  while (start !== undefined && !stopped()) {
    const page = await source.pager(start, revision, PAGE);
    // kine's own keys (auth state, alarms) stay behind: etcd keeps its own.
    const kvs = page.kvs.filter((kv) => !isReserved(kv.key));
    for (let i = 0; i < kvs.length; i += TXN_OPS) {
      await etcd.kv("Txn", {
        success: kvs.slice(i, i + TXN_OPS).map((kv) => ({
          request_put: {
            key: keyToBytes(kv.key),
            value: kv.value,
            lease: leases.get(kv.lease) ?? "0",
          },
        })),
      });
    }
    keys += kvs.length;
    progress.add(kvs.length, page.kvs.at(-1)?.modRevision ?? revision);
    start = page.nextKey;
  }
  return keys;
}

/** Pages of an etcd's current key space. */
export function etcdPager(etcd: EtcdConnection): KvPager {
  return async (start, _revision, limit, keysOnly) => {
    const page = await etcdPage(etcd, start, 0, limit, keysOnly);
    return { kvs: page.kvs, nextKey: page.more ? page.kvs.at(-1)!.key + "\0" : undefined };
  };
}

/**
 * A pager that shows keys and values only (revisions, versions and leases
 * zero), leaving out kine's own keys: what a copy to etcd keeps.
 */
export function valuesOnly(pager: KvPager): KvPager {
  return async (start, revision, limit, keysOnly) => {
    const page = await pager(start, revision, limit, keysOnly);
    const kvs = page.kvs.filter((kv) => !isReserved(kv.key)).map((kv) => ({
      ...kv,
      createRevision: 0,
      modRevision: 0,
      version: 0,
      lease: 0,
    }));
    return { kvs, nextKey: page.nextKey };
  };
}
