import type { EventReader, EventRow } from "./log.ts";
import type { WatchHub } from "./watch_hub.ts";
import type { WritePipeline } from "./write_pipeline.ts";
import type { LogRecord } from "../types.ts";

/** A row as a snapshot copies it: a tombstone's value is NULL, as the log stores it. */
export function toRecord(row: EventRow): LogRecord {
  return {
    id: row.id,
    name: row.name,
    created: row.created,
    deleted: row.deleted,
    createRevision: row.createRevision,
    prevRevision: row.prevRevision,
    lease: row.lease,
    value: row.deleted ? null : row.value,
    oldValue: row.oldValue,
    version: row.version,
  };
}

/**
 * Copies of the whole log for `Backend.snapshot()`. Compaction waits (between
 * its batches, see {@link idle}) while a copy is read, so each copy is one
 * consistent state with its compact revision, however long its reader takes.
 */
export class Snapshots {
  #reading = 0;
  #waiters: (() => void)[] = [];

  constructor(
    private readonly reader: EventReader,
    private readonly writes: WritePipeline,
    private readonly hub: WatchHub,
    private readonly pageSize: number,
  ) {}

  /** Every row up to the revision the poll loop has published by now, in pages in id order. */
  async *read(current: number): AsyncGenerator<LogRecord[]> {
    this.#reading++;
    try {
      // A compaction batch under way holds the write chain: let it finish first.
      await this.writes.exclusive(() => Promise.resolve());
      await this.hub.waitForSyncTo(current);
      const upTo = this.hub.polled;
      for (let after = 0; after < upTo;) {
        const rows = await this.reader.events(after, upTo, this.pageSize);
        if (rows.length === 0) break;
        yield rows.map(toRecord);
        after = rows[rows.length - 1].id;
      }
    } finally {
      if (--this.#reading === 0) { for (const wake of this.#waiters.splice(0)) wake(); }
    }
  }

  /** Resolves once no copy is being read. */
  async idle(): Promise<void> {
    while (this.#reading > 0) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }
}
