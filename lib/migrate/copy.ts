/** The copy itself: rows in id order from a source into an importer, a batch at a time. */
import type { Importer } from "../backend/import.ts";
import { keyToText } from "../backend/keys.ts";
import type { LogRecord } from "../backend/types.ts";
import type { Progress } from "./progress.ts";
import type { MigrateSource } from "./source.ts";

/** Bad input: a one-line error naming what is wrong (exit status 2). */
export class MigrateError extends Error {}

/** Throws, naming the key, if the target cannot store one of `rows`' keys. */
export function checkKeys(target: Importer, rows: { name: string; id: number }[]): void {
  for (const r of rows) {
    const why = target.keyError(r.name);
    if (why) {
      throw new MigrateError(
        `the target cannot store key ${JSON.stringify(keyToText(r.name) ?? r.name)} ` +
          `(revision ${r.id}): ${why}`,
      );
    }
  }
}

/** Writes one batch: its keys checked first, so a batch is written whole or not at all. */
export async function writeBatch(target: Importer, rows: LogRecord[]): Promise<void> {
  checkKeys(target, rows);
  await target.importRows(rows);
}

/**
 * Copies the rows with `from < id <= to`; stops early (between batches) once
 * `stopped()` says so. Returns the last id written (or `from`).
 */
export async function copyRows(
  source: MigrateSource,
  target: Importer,
  range: { from: number; to: number; batch: number },
  progress: Progress,
  stopped: () => boolean,
): Promise<number> {
  let head = range.from;
  // The next batch is read while this one is written: source and target work side by side.
  let next = source.rows(head, range.to, range.batch);
  while (!stopped()) {
    const rows = await next;
    if (rows.length === 0) break;
    const last = rows[rows.length - 1].id;
    next = last < range.to ? source.rows(last, range.to, range.batch) : Promise.resolve([]);
    await writeBatch(target, rows);
    head = last;
    progress.add(rows.length, head);
  }
  // A read started for a batch never written (interrupted) must not fail unobserved.
  next.catch(() => {});
  return head;
}
