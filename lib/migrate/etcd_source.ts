/**
 * A live etcd as a copy's source: every key at one revision, read in pages,
 * becomes one kine row with etcd's create and mod revisions, version, lease
 * and value; leases are re-created with their remaining TTL; the compact
 * revision is etcd's head at the copy, since no history below it is copied.
 *
 * kine keeps one row per revision, where etcd gives every key a multi-key txn
 * wrote the same revision: the first key (in key order) of such a revision
 * keeps it, the others get fresh revisions above etcd's head, in order, and
 * are listed in the output ({@link EtcdSource.notes}).
 */
import type { LeaseRecord, LogRecord } from "../backend/types.ts";
import { gapRecord } from "../backend/logstructured/events.ts";
import type { KvPager } from "./digest.ts";
import { FIRST_KEY } from "./digest.ts";
import { connectEtcd, type EtcdConnection, etcdPage, leaseId } from "./etcd_client.ts";
import { type EtcdAuth, readEtcdAuth } from "./etcd_auth.ts";
import type { Side } from "./flags.ts";
import type { MigrateSource } from "./source.ts";
import { MigrateError } from "./copy.ts";
import { Wake } from "./wake.ts";
import { keyFromBytes } from "../backend/keys.ts";

const PAGE = 1000;

/** Opens a live etcd as a source. */
export async function openEtcdSource(side: Side): Promise<EtcdSource> {
  return new EtcdSource(await connectEtcd(side), side);
}

/** A key moved to a fresh revision: its etcd mod revision and the one it got. */
interface Moved {
  from: number;
  to: number;
}

export class EtcdSource implements MigrateSource {
  #rows: LogRecord[] = [];
  #head = 0;
  /** etcd's head when the copy read it: the history below it is not copied. */
  #pinned = 0;
  readonly #moved = new Map<string, Moved>();
  /** The id of each key's last row, for the previous revision of the rows a watch adds. */
  readonly #last = new Map<string, number>();
  #cancelWatch?: () => void;
  #failure?: Error;
  readonly #wake = new Wake();

  constructor(private readonly etcd: EtcdConnection, private readonly side: Side) {}

  /** etcd's users and roles as kine's auth state. */
  auth(): Promise<EtcdAuth | { notes: string[] } | undefined> {
    return readEtcdAuth(this.etcd, this.side);
  }

  /** Reads the whole key space at etcd's current revision; returns the revision the copy ends at. */
  async pin(): Promise<number> {
    const head = await this.latestRevision();
    this.#head = head;
    this.#pinned = head;
    const byRevision = new Map<number, LogRecord>();
    const shared: LogRecord[] = [];
    let start: string | undefined = FIRST_KEY;
    while (start !== undefined) {
      const r = await etcdPage(this.etcd, start, head, PAGE);
      for (const kv of r.kvs) {
        const created = kv.createRevision === kv.modRevision;
        const row: LogRecord = {
          id: kv.modRevision,
          name: kv.key,
          created,
          deleted: false,
          createRevision: created ? 0 : kv.createRevision,
          prevRevision: 0,
          lease: kv.lease,
          value: kv.value,
          oldValue: null,
          version: kv.version,
        };
        if (byRevision.has(row.id)) shared.push(row);
        else byRevision.set(row.id, row);
      }
      start = r.more ? r.kvs[r.kvs.length - 1].key + "\0" : undefined;
    }
    let next = head;
    for (const row of shared) {
      this.#moved.set(row.name, { from: row.id, to: ++next });
      row.id = next;
    }
    if (!byRevision.has(head) && shared.length === 0) {
      // The head was a delete: an invisible gap row keeps kine's revision counter at etcd's.
      byRevision.set(head, gapRecord(head));
    }
    this.#rows = [...byRevision.values(), ...shared].sort((a, b) => a.id - b.id);
    for (const row of this.#rows) this.#last.set(row.name, row.id);
    return next;
  }

  /** What the copy did differently from etcd, for the output. */
  notes(): string[] {
    if (this.#moved.size === 0) return [];
    const list = [...this.#moved].map(([key, m]) => `${key} (${m.from} -> ${m.to})`);
    return [
      `${this.#moved.size} keys shared an etcd revision with another key (one multi-key txn) ` +
      `and got fresh revisions above etcd's head ${this.#head}: ${list.join(", ")}`,
    ];
  }

  rows(after: number, upTo: number, limit: number): Promise<LogRecord[]> {
    if (this.#failure) return Promise.reject(this.#failure);
    let lo = 0;
    let hi = this.#rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#rows[mid].id <= after) lo = mid + 1;
      else hi = mid;
    }
    const out: LogRecord[] = [];
    for (let i = lo; i < this.#rows.length && out.length < limit; i++) {
      if (this.#rows[i].id > upTo) break;
      out.push(this.#rows[i]);
    }
    return Promise.resolve(out);
  }

  async leases(): Promise<LeaseRecord[]> {
    const { leases } = await this.etcd.lease("LeaseLeases", {});
    const out: LeaseRecord[] = [];
    const now = Date.now();
    for (const { ID } of leases) {
      const t = await this.etcd.lease("LeaseTimeToLive", { ID, keys: false });
      const remaining = Number(t.TTL);
      // -1: expired meanwhile.
      if (remaining > 0) {
        out.push({ id: leaseId(ID), ttl: Number(t.grantedTTL), expiresAt: now + remaining * 1000 });
      }
    }
    return out;
  }

  /**
   * The revision the copy read etcd at: only the live keys were copied, so a
   * read or watch below it must be refused as compacted (a client relists),
   * never answered from an incomplete history.
   */
  compactRevision(): Promise<number> {
    return Promise.resolve(this.#pinned);
  }

  async latestRevision(): Promise<number> {
    return (await etcdPage(this.etcd, FIRST_KEY, 0, 1, true)).revision;
  }

  /** Live keys at a revision, with the moved keys' revisions as they were copied. */
  readonly pager: KvPager = async (start, revision, limit, keysOnly = false) => {
    const r = await etcdPage(this.etcd, start, Math.min(revision, this.#head), limit, keysOnly);
    const kvs = r.kvs.map((kv) => {
      const moved = this.#moved.get(kv.key);
      const shift = (rev: number) => (moved && rev === moved.from ? moved.to : rev);
      return {
        ...kv,
        createRevision: shift(kv.createRevision),
        modRevision: shift(kv.modRevision),
      };
    });
    // Moved keys sort by key as before: only their revisions changed.
    return { kvs, nextKey: r.more ? kvs[kvs.length - 1].key + "\0" : undefined };
  };

  /**
   * Follows etcd with a watch from the copied revision (with previous values);
   * its events become rows with etcd's revisions, appended to the copy's.
   */
  async changed(ms: number): Promise<void> {
    if (!this.#cancelWatch) {
      if (this.#moved.size > 0) {
        throw new MigrateError(
          "--follow from etcd: keys moved above etcd's head would collide with its next " +
            "revisions; stop the writers and copy without --follow",
        );
      }
      this.#cancelWatch = this.etcd.watch(this.#head + 1, (r) => this.#apply(r), (err) => {
        this.#failure = new Error(`etcd watch failed: ${err.message}`);
        this.#wake.wake();
      });
    }
    await this.#wake.wait(ms);
  }

  /** Rows of one WatchResponse, with etcd's revisions. */
  #apply(r: any): void {
    if (r.canceled || Number(r.compact_revision) > 0) {
      this.#failure = new Error(`etcd cancelled the watch: ${r.cancel_reason || "compacted"}`);
    }
    for (const e of r.events ?? []) {
      const kv = e.kv;
      const id = Number(kv.mod_revision);
      if (id <= this.#head) {
        this.#failure ??= new MigrateError(
          `etcd wrote several keys at revision ${id} (one multi-key txn), which kine cannot ` +
            "keep as one revision each: stop the writers and copy again without --follow",
        );
        break;
      }
      const name = keyFromBytes(kv.key);
      const prev = e.prev_kv ? Number(e.prev_kv.mod_revision) : this.#last.get(name) ?? 0;
      const created = e.type !== "DELETE" && kv.create_revision === kv.mod_revision;
      this.#rows.push(
        e.type === "DELETE"
          ? {
            id,
            name,
            created: false,
            deleted: true,
            createRevision: 0,
            prevRevision: prev,
            lease: 0,
            value: null,
            oldValue: e.prev_kv?.value ?? null,
            version: e.prev_kv ? Number(e.prev_kv.version) + 1 : 0,
          }
          : {
            id,
            name,
            created,
            deleted: false,
            createRevision: created ? 0 : Number(kv.create_revision),
            // A create after a delete follows the tombstone, as kine writes it.
            prevRevision: created ? this.#last.get(name) ?? 0 : prev,
            lease: leaseId(kv.lease),
            value: kv.value,
            oldValue: created ? null : e.prev_kv?.value ?? null,
            version: Number(kv.version),
          },
      );
      this.#last.set(name, id);
      this.#head = id;
    }
    this.#wake.wake();
  }

  close(): Promise<void> {
    this.#cancelWatch?.();
    this.etcd.close();
    return Promise.resolve();
  }
}
