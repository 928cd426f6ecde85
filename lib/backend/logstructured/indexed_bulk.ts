/**
 * Bulk loads whose rows kine computes from its key index instead of reading
 * each key's latest row from the store: after the index has applied every
 * write this process made, each put's row follows from its key's newest
 * revision there (none for a new key, the common bulk case), and the store
 * inserts the rows as they are (`LogStore.writeKnownBulk`; why that stays
 * right under other servers: `sql/bulk_known.ts`). The rows go to the watch
 * hub as written, so the watch does not read them back either. Where the
 * store had a row above the index's position, another writer took a key's
 * slot, or the load is not one the index can compute (a key written twice in
 * the commit, a key whose newest revision is a tombstone), the load runs on
 * the store's own `writeBulk`, which reads the keys' rows.
 *
 * @module
 */
import type { BulkKnown, BulkPrev, BulkPut } from "./key_txn.ts";
import type { EventRow, LogStore } from "./log.ts";
import type { IndexedRow } from "./key_index.ts";
import type { PipelineStore } from "./write_pipeline.ts";

/** What the indexed path reads of the process: its index, and where it stands. */
export interface BulkIndex {
  /** The key's newest revision in the index, if it has one. */
  newest(key: string): Readonly<IndexedRow> | undefined;
  /** A row's value, if held in memory. */
  cachedValue(id: number): Uint8Array | undefined;
  /** The highest revision the index has applied (every row up to it). */
  position(): number;
  /** The highest revision this process acknowledged. */
  acknowledged(): number;
  /** Resolves when the index has applied every row up to `revision`. */
  waitFor(revision: number): Promise<void>;
  /** Hands committed rows (in id order) to the watch hub, as the write pipeline does. */
  committed(rows: EventRow[]): void;
}

/** After the indexed path lost to another writer, loads skip it for this long, ms. */
const BACK_OFF_MS = 1000;
/**
 * How long a load waits, holding the write queue, for the index to reach what
 * the process acknowledged, ms; then it takes the store's path (and the
 * indexed path rests, as after a loss). Rows the process handed the watch hub
 * are applied at once; others wait for the hub's read (another server's, or
 * those of txns the hub was not handed).
 */
const CATCH_UP_MS = 50;

/** Whether `index` reaches `revision` within {@link CATCH_UP_MS}. */
async function caughtUp(index: BulkIndex, revision: number): Promise<boolean> {
  if (index.position() >= revision) return true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      index.waitFor(revision).then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), CATCH_UP_MS)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The newest row of every put's key from the index, or null where a load is
 * not one it can compute (see the module doc).
 */
export function knownRows(loads: BulkPut[][], index: BulkIndex): BulkKnown | null {
  const seen = new Set<string>();
  const prev: BulkPrev[][] = [];
  for (const puts of loads) {
    const out: BulkPrev[] = [];
    for (const put of puts) {
      if (seen.has(put.name)) return null;
      seen.add(put.name);
      const e = index.newest(put.name);
      if (e?.deleted) return null;
      out.push(
        e
          ? {
            id: e.mod,
            createRevision: e.create,
            version: e.version,
            lease: e.lease,
            value: index.cachedValue(e.mod),
          }
          : { id: 0, createRevision: 0, version: 0, lease: 0, value: null },
      );
    }
    prev.push(out);
  }
  return { prev, position: index.position() };
}

/** The rows a load wrote, as the watch reads rows back; null where an old value is unknown. */
function eventRows(puts: BulkPut[], prev: BulkPrev[], ids: number[]): EventRow[] | null {
  const rows: EventRow[] = [];
  for (let i = 0; i < puts.length; i++) {
    const p = prev[i];
    if (p.value === undefined) return null;
    const live = p.id !== 0;
    rows.push({
      id: ids[i],
      name: puts[i].name,
      created: !live,
      deleted: false,
      createRevision: live ? p.createRevision : 0,
      prevRevision: p.id,
      lease: puts[i].lease,
      value: puts[i].value,
      version: live ? p.version + 1 : 1,
      oldValue: p.value ?? new Uint8Array(0),
      prevCreateRevision: p.createRevision,
      prevLease: p.lease,
    });
  }
  return rows;
}

/**
 * What the write pipeline uses of `store`, with `writeBulk` computing rows
 * from `index` first (see the module doc).
 */
export function withIndexedBulk(store: LogStore, index: BulkIndex): PipelineStore {
  const writeKnown = store.writeKnownBulk?.bind(store);
  const writeBulk = store.writeBulk?.bind(store);
  if (!writeKnown || !writeBulk) return store;
  /** The highest id the indexed path wrote: the index must apply it before the next load. */
  let own = 0;
  let skipUntil = 0;
  const indexed = async (loads: BulkPut[][]): Promise<number[]> => {
    if (performance.now() < skipUntil) return await writeBulk(loads);
    if (!await caughtUp(index, Math.max(own, index.acknowledged()))) {
      skipUntil = performance.now() + BACK_OFF_MS;
      return await writeBulk(loads);
    }
    // From here to the statements nothing awaits: the rows follow the index at its position.
    const known = knownRows(loads, index);
    if (!known) return await writeBulk(loads);
    let ids: number[][] | null = null;
    try {
      ids = await writeKnown(loads, known);
    } catch (err) {
      // The indexed path wrote nothing; the store's own path decides what the failure means.
      if (store.classify(err).kind !== "conflict") return await writeBulk(loads);
    }
    if (!ids) {
      skipUntil = performance.now() + BACK_OFF_MS;
      return await writeBulk(loads);
    }
    const rows: EventRow[] = [];
    let complete = true;
    loads.forEach((puts, l) => {
      const r = eventRows(puts, known.prev[l], ids![l]);
      if (r) { for (const row of r) rows.push(row); }
      else complete = false;
    });
    own = Math.max(own, ...ids.map((l) => l[l.length - 1]));
    if (complete) index.committed(rows);
    return ids.map((l) => l[l.length - 1]);
  };
  return {
    write: (fn, options) => store.write(fn, options),
    writeKeyTxns: store.writeKeyTxns?.bind(store),
    writeBulk: indexed,
    classify: (err) => store.classify(err),
  };
}
