/**
 * `--follow`: after the copy, the source's new rows are applied in order with
 * their revisions until interrupted or idle for `--until-idle`; the lag is
 * printed every few seconds.
 */
import type { Importer } from "../backend/import.ts";
import { writeBatch } from "./copy.ts";
import type { MigrateSource } from "./source.ts";

export interface FollowOptions {
  batch: number;
  /** Stop after this long (ms) without a change; 0 = never. */
  untilIdle: number;
  stopped(): boolean;
  report(line: string): void;
}

const REPORT_EVERY_MS = 2000;
/** Longest wait for a change before looking again (and reporting). */
const WAIT_MS = 250;

/** Follows the source from `head`; returns the last revision applied. */
export async function follow(
  source: MigrateSource,
  target: Importer,
  head: number,
  o: FollowOptions,
): Promise<number> {
  let lastChange = Date.now();
  let lastReport = 0;
  let applied = 0;
  while (!o.stopped()) {
    const rows = await source.rows(head, Number.MAX_SAFE_INTEGER, o.batch);
    if (rows.length > 0) {
      await writeBatch(target, rows);
      head = rows[rows.length - 1].id;
      applied += rows.length;
      lastChange = Date.now();
    } else if (o.untilIdle > 0 && Date.now() - lastChange >= o.untilIdle) {
      break;
    } else {
      await source.changed(WAIT_MS);
    }
    if (Date.now() - lastReport >= REPORT_EVERY_MS) {
      lastReport = Date.now();
      const lag = Math.max((await source.latestRevision()) - head, 0);
      o.report(`follow: revision ${head}, ${applied} rows applied, lag ${lag} revisions`);
    }
  }
  return head;
}
