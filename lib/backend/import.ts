/**
 * Writing a copy of another kine's log into a store, rows keeping their ids
 * (revisions): what `kine migrate` writes through. One implementation per
 * engine family: SQL (`sql/import.ts`) and NATS (`nats/import.ts`).
 *
 * @module
 */
import { type BackendOptions, parseEndpoint } from "./endpoint.ts";
import { EndpointError } from "./errors.ts";
import { openNatsImporter } from "./nats/import.ts";
import { openSqlImporter } from "./sql/import.ts";
import { mysqlEngine } from "./sql/mysql.ts";
import { postgresEngine } from "./sql/postgres.ts";
import { sqliteEngine } from "./sql/sqlite.ts";
import type { LeaseRecord, LogRecord } from "./types.ts";

/** What a target holds before a copy. */
export interface ImportState {
  /** Rows of the log (the compaction bookkeeping row under id 0 left out). */
  rows: number;
  /** The highest id written; a resumed copy continues above it. */
  head: number;
  /** The marker of a copy under way ({@link Importer.setMarker}), or null. */
  marker: string | null;
}

/** A store being written as a copy of another log. */
export interface Importer {
  state(): Promise<ImportState>;
  /** Records (or with null, clears) which copy is under way, so that only it may resume. */
  setMarker(marker: string | null): Promise<void>;
  /** Why the store cannot hold `key`, or undefined if it can. */
  keyError(key: string): string | undefined;
  /**
   * Writes rows whose ids ascend above the head, with their ids, as one unit:
   * a SQL transaction (all or nothing); on NATS, messages in order, whose
   * sequences are their ids (a failure leaves a prefix, which a resume continues).
   */
  importRows(rows: LogRecord[]): Promise<void>;
  /** Stores lease records, replacing those with the same ids. */
  importLeases(leases: LeaseRecord[]): Promise<void>;
  /**
   * Completes the copy: records `compactRevision` where the log keeps it apart
   * from its rows, and moves the engine's id sequence past the head.
   */
  finish(compactRevision: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens the store an endpoint names for writing a copy into it. */
export async function openImporter(o: BackendOptions): Promise<Importer> {
  const { scheme, dsn } = parseEndpoint(o.endpoint);
  switch (scheme) {
    case "sqlite":
      return await openSqlImporter(sqliteEngine(false), dsn, o);
    case "litestream":
      return await openSqlImporter(sqliteEngine(true), dsn, o);
    case "postgres":
    case "postgresql":
      return await openSqlImporter(postgresEngine, dsn, o);
    case "mysql":
      return await openSqlImporter(mysqlEngine, dsn, o);
    case "nats":
    case "jetstream":
      return await openNatsImporter(o);
  }
  throw new EndpointError(`kine migrate cannot write to ${scheme}:// endpoints`);
}
