import { setImmediate } from "node:timers";
import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { BackendError } from "../errors.ts";
import type { EventRow, LogStore, LogWriteTx, StoreFailure, WriteOptions } from "./log.ts";
import { Pacer, TxnRunner } from "./txn.ts";
import {
  type BulkPut,
  bulkPutsOf,
  type KeyTxn,
  keyTxnEventRow,
  keyTxnLost,
  keyTxnOf,
  keyTxnResult,
  type KeyTxnRow,
} from "./key_txn.ts";
import type { Txn, TxnResult } from "../types.ts";

/**
 * How often a txn that lost its id to a gap fill or its key to another process's write, or a
 * batch that hit a deadlock, runs again.
 */
const MAX_ATTEMPTS = 20;

export interface WritePipelineOptions {
  logger: Logger;
  metrics?: KineMetrics;
}

interface Pending {
  txn: Txn;
  resolve(result: TxnResult): void;
  reject(err: unknown): void;
}

/** A committed txn's answer, with the rows it appended where they are known (see `TxnRunner`). */
type Outcome = { ok: true; result: TxnResult; rows?: EventRow[] } | { ok: false; err: unknown };

/** Single-key txns per store round trip at most, and the bytes of their values. */
const KEYED_CHUNK = 256;
const CHUNK_BYTES = 4 << 20;
/** Puts of bulk txns per store round trip at most (a bulk txn is never split). */
const BULK_CHUNK = 1024;

/**
 * Consecutive runs of `indices`, each of at most `max` units and
 * {@link CHUNK_BYTES} bytes (a single index may exceed them alone).
 */
function chunks(
  indices: number[],
  max: number,
  size: (i: number) => { units: number; bytes: number },
): number[][] {
  const out: number[][] = [];
  let units = 0;
  let bytes = 0;
  for (const i of indices) {
    const s = size(i);
    const last = out[out.length - 1];
    if (!last || units + s.units > max || bytes + s.bytes > CHUNK_BYTES) {
      out.push([i]);
      units = s.units;
      bytes = s.bytes;
    } else {
      last.push(i);
      units += s.units;
      bytes += s.bytes;
    }
  }
  return out;
}

/** The size of a single-key txn's write. */
function keyedSize(k: KeyTxn): { units: number; bytes: number } {
  return {
    units: 1,
    bytes: k.name.length + (k.success.type === "put" ? k.success.value.length : 0),
  };
}

/** The size of a bulk txn's puts. */
function bulkSize(puts: BulkPut[]): { units: number; bytes: number } {
  return {
    units: puts.length,
    bytes: puts.reduce((n, p) => n + p.name.length + p.value.length, 0),
  };
}

/** A committed bulk txn's answer. */
function bulkOutcome(revision: number, puts: BulkPut[]): Outcome {
  const responses = puts.map(() => ({ type: "put" as const, prevKv: undefined }));
  return { ok: true, result: { revision, succeeded: true, responses } };
}

function conflictError(): BackendError {
  return new BackendError("unavailable", "etcdserver: request timed out, possibly due to conflict");
}

/**
 * Every write of the process goes through here, one store transaction at a
 * time. Txns from concurrent callers are gathered into one transaction (group
 * commit). Single-key txns (kube's writes) go to the store's one-round-trip
 * batch where it has one; the others run each under its own savepoint, so a
 * failing one leaves no row behind and the others still commit. Callers are
 * answered only after the commit.
 */
/** What the pipeline uses of a {@link LogStore}. */
export type PipelineStore = Pick<LogStore, "write" | "writeKeyTxns" | "writeBulk" | "classify">;

export class WritePipeline {
  #queue: Pending[] = [];
  #flushing = false;
  #chain: Promise<unknown> = Promise.resolve();
  /** The rows the single-key txns of the batch being flushed wrote. */
  #written: EventRow[] = [];

  constructor(
    private readonly store: PipelineStore,
    private readonly options: WritePipelineOptions,
    /**
     * Told the highest revision of every committed batch, and the rows that
     * its txns wrote as the writer knows them, in id order (a bulk load's rows
     * are not among them).
     */
    private readonly onCommit: (revision: number, written: EventRow[]) => void,
  ) {}

  /** Runs `fn` in a store transaction after every write queued before it. */
  write<T>(fn: (tx: LogWriteTx) => Promise<T>, options?: WriteOptions): Promise<T> {
    return this.exclusive(() => this.store.write(fn, options));
  }

  /** Runs `step` after every write queued before it, with none under way meanwhile. */
  exclusive<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(step);
    this.#chain = next.catch(() => {});
    return next;
  }

  /** Resolves when every write queued so far has finished. */
  async drain(): Promise<void> {
    await this.#chain;
  }

  /** Queues a txn for the next group commit. */
  txn(txn: Txn): Promise<TxnResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ txn, resolve, reject });
      if (!this.#flushing) {
        this.#flushing = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#queue;
    this.#queue = [];
    try {
      const outcomes: Outcome[] = new Array(batch.length);
      const keyed: number[] = [];
      const general: number[] = [];
      const keys = batch.map((p) => this.store.writeKeyTxns ? keyTxnOf(p.txn) : null);
      const bulks = batch.map((p, i) =>
        !keys[i] && this.store.writeBulk ? bulkPutsOf(p.txn) : null
      );
      keys.forEach((k, i) => {
        if (k) keyed.push(i);
        else if (!bulks[i]) general.push(i);
      });
      for (const chunk of chunks(keyed, KEYED_CHUNK, (i) => keyedSize(keys[i]!))) {
        await this.#settle(
          outcomes,
          chunk,
          () => this.#commitKeyed(chunk.map((i) => batch[i].txn)),
        );
      }
      const loads = bulks.flatMap((puts, i) => puts ? [i] : []);
      for (const chunk of chunks(loads, BULK_CHUNK, (i) => bulkSize(bulks[i]!))) {
        if (
          chunk.length > 1 && await this.#commitBulks(outcomes, chunk.map((i) => bulks[i]!), chunk)
        ) {
          continue;
        }
        for (const i of chunk) {
          await this.#settle(outcomes, [i], () => this.#commitBulk(batch[i].txn, bulks[i]!));
        }
      }
      if (general.length > 0) {
        await this.#settle(outcomes, general, () => this.#commit(general.map((i) => batch[i].txn)));
      }
      this.options.metrics?.txnBatchSize.observe(batch.length);
      let last = 0;
      const rows: EventRow[] = [];
      batch.forEach((p, i) => {
        const o = outcomes[i];
        if (o.ok) {
          last = Math.max(last, o.result.revision);
          if (o.rows) { for (const row of o.rows) rows.push(row); }
          p.resolve(o.result);
        } else p.reject(o.err);
      });
      // Parts of a batch commit one after another, not in the callers' order.
      const written = this.#written.concat(rows).sort((x, y) => x.id - y.id);
      this.#written = [];
      this.onCommit(last, written);
    } finally {
      if (this.#queue.length > 0) setImmediate(() => this.#flush());
      else this.#flushing = false;
    }
  }

  /** Runs one part of a batch, its outcomes at `indices`; a failure fails that part alone. */
  async #settle(outcomes: Outcome[], indices: number[], run: () => Promise<Outcome[]>) {
    try {
      const out = await run();
      indices.forEach((i, j) => outcomes[i] = out[j]);
    } catch (err) {
      if (!(err instanceof BackendError) && this.store.classify(err).kind !== "conflict") {
        this.options.logger.error("write transaction failed", { error: String(err) });
      }
      const failure = this.#classify(err);
      for (const i of indices) outcomes[i] = { ok: false, err: failure };
    }
  }

  /**
   * Commits single-key txns as the store's one-round-trip batch. A txn whose
   * write lost to another writer (compares held, no row went in) runs again
   * in a batch of its own, after the others committed; a batch that fails on
   * something else than a deadlock or the connection runs again on the
   * general path, where each txn has its savepoint and a failure is its own.
   */
  async #commitKeyed(txns: Txn[]): Promise<Outcome[]> {
    const keys = txns.map((t) => keyTxnOf(t)!);
    const out: Outcome[] = new Array(txns.length);
    let todo = txns.map((_, i) => i);
    for (let attempt = 1; todo.length > 0; attempt++) {
      let rows: (KeyTxnRow | Error)[];
      try {
        rows = await this.exclusive(() => this.store.writeKeyTxns!(todo.map((i) => keys[i])));
      } catch (err) {
        const failure = this.store.classify(err);
        if (failure.kind === "other") {
          const general = await this.#commit(todo.map((i) => txns[i]));
          todo.forEach((i, j) => out[i] = general[j]);
          return out;
        }
        if (attempt >= MAX_ATTEMPTS || !this.#retriable(failure)) throw err;
        await new Promise((r) => setTimeout(r, attempt));
        continue;
      }
      const lost: number[] = [];
      todo.forEach((i, j) => {
        const row = rows[j];
        if (row instanceof Error) out[i] = { ok: false, err: row };
        else if (!keyTxnLost(keys[i], row)) {
          out[i] = { ok: true, result: keyTxnResult(keys[i], row) };
          const written = keyTxnEventRow(keys[i], row);
          if (written) this.#written.push(written);
        } else if (attempt < MAX_ATTEMPTS) lost.push(i);
        else out[i] = { ok: false, err: conflictError() };
      });
      if (lost.length > 0) this.options.metrics?.insertErrorsTotal.labels("true").inc(lost.length);
      todo = lost;
    }
    return out;
  }

  /**
   * Commits several bulk loads in one store transaction, their outcomes at
   * `indices`; false if that failed, which wrote nothing: each then runs
   * alone ({@link #commitBulk}), so a failure is its own.
   */
  async #commitBulks(outcomes: Outcome[], loads: BulkPut[][], indices: number[]) {
    try {
      const revisions = await this.exclusive(() => this.store.writeBulk!(loads));
      indices.forEach((i, j) => outcomes[i] = bulkOutcome(revisions[j], loads[j]));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Commits a bulk load as the store's one multi-row insert, again while
   * another writer's row on one of its keys or a deadlock fails it; on any
   * other failure (a key the engine cannot store…) on the general path.
   */
  async #commitBulk(txn: Txn, puts: BulkPut[]): Promise<Outcome[]> {
    for (let attempt = 1;; attempt++) {
      try {
        const [revision] = await this.exclusive(() => this.store.writeBulk!([puts]));
        return [bulkOutcome(revision, puts)];
      } catch (err) {
        const failure = this.store.classify(err);
        if (failure.kind === "other") return await this.#commit([txn]);
        if (attempt >= MAX_ATTEMPTS || !this.#retriable(failure)) throw err;
        await new Promise((r) => setTimeout(r, attempt));
      }
    }
  }

  /**
   * Commits a batch, running it again when the engine says it may (a
   * deadlock, a serialization failure, an id lost to a gap fill). A batch of
   * one needs no savepoint: its failure is the transaction's.
   */
  async #commit(batch: Txn[]): Promise<Outcome[]> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.write(async (tx) => {
          const pacer = new Pacer();
          if (batch.length === 1) {
            const runner = new TxnRunner(tx, pacer);
            const result = await runner.run(batch[0]);
            return [{ ok: true, result, rows: runner.appended }];
          }
          const outcomes: Outcome[] = [];
          for (const txn of batch) outcomes.push(await this.#runSaved(tx, txn, pacer));
          return outcomes;
        });
      } catch (err) {
        if (attempt >= MAX_ATTEMPTS || !this.#retriable(this.store.classify(err))) throw err;
        await new Promise((r) => setTimeout(r, attempt));
      }
    }
  }

  /** One txn of a batch under a savepoint; a lost gap-fill race runs it again. */
  async #runSaved(tx: LogWriteTx, txn: Txn, pacer: Pacer): Promise<Outcome> {
    for (let attempt = 1;; attempt++) {
      await tx.savepoint();
      try {
        const runner = new TxnRunner(tx, pacer);
        const result = await runner.run(txn);
        await tx.releaseSavepoint();
        return { ok: true, result, rows: runner.appended };
      } catch (err) {
        const failure = this.store.classify(err);
        // A deadlock may have ended the whole transaction (MySQL rolls it back, savepoint and
        // all): the batch runs again as a whole.
        if (failure.kind === "retry" || failure.kind === "connection") throw err;
        try {
          await tx.rollbackToSavepoint();
        } catch {
          throw err; // the engine ended the transaction with it (its savepoint is gone)
        }
        if (
          (failure.kind === "gap_race" || failure.kind === "conflict") && attempt < MAX_ATTEMPTS
        ) {
          this.options.metrics?.insertErrorsTotal.labels("true").inc();
          continue;
        }
        return { ok: false, err: this.#classify(err) };
      }
    }
  }

  /**
   * A `conflict` is another process's write to the same key committing first:
   * run again, the txn reads that write, so its compares see the current
   * value (and a losing compare takes the failure branch, as in etcd).
   */
  #retriable(f: StoreFailure): boolean {
    const lost = f.kind === "gap_race" || f.kind === "conflict";
    if (lost) this.options.metrics?.insertErrorsTotal.labels("true").inc();
    return lost || f.kind === "retry";
  }

  #classify(err: unknown): unknown {
    if (err instanceof BackendError) return err;
    const failure = this.store.classify(err);
    if (failure.kind === "conflict") return conflictError();
    if (failure.kind === "connection") {
      return new BackendError("unavailable", "etcdserver: database unavailable");
    }
    return new BackendError("unavailable", `etcdserver: ${(err as Error)?.message ?? err}`);
  }
}
