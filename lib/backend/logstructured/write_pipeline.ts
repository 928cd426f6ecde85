import { setImmediate } from "node:timers";
import type { Logger } from "../../log/mod.ts";
import type { KineMetrics } from "../../metrics/mod.ts";
import { BackendError } from "../errors.ts";
import type { LogStore, LogWriteTx, StoreFailure, WriteOptions } from "./log.ts";
import { Pacer, TxnRunner } from "./txn.ts";
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

type Outcome = { ok: true; result: TxnResult } | { ok: false; err: unknown };

/**
 * Every write of the process goes through here, one store transaction at a
 * time. Txns from concurrent callers are gathered into one transaction (group
 * commit); when there are several, each runs under its own savepoint, so a
 * failing one leaves no row behind and the others still commit. Callers are
 * answered only after the commit.
 */
export class WritePipeline {
  #queue: Pending[] = [];
  #flushing = false;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: LogStore,
    private readonly options: WritePipelineOptions,
    /** Told the highest revision of every committed batch. */
    private readonly onCommit: (revision: number) => void,
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
      const outcomes = await this.#commit(batch);
      this.options.metrics?.txnBatchSize.observe(batch.length);
      let last = 0;
      batch.forEach((p, i) => {
        const o = outcomes[i];
        if (o.ok) {
          last = Math.max(last, o.result.revision);
          p.resolve(o.result);
        } else p.reject(o.err);
      });
      this.onCommit(last);
    } catch (err) {
      if (!(err instanceof BackendError) && this.store.classify(err).kind !== "conflict") {
        this.options.logger.error("write transaction failed", { error: String(err) });
      }
      const failure = this.#classify(err);
      for (const p of batch) p.reject(failure);
    } finally {
      if (this.#queue.length > 0) setImmediate(() => this.#flush());
      else this.#flushing = false;
    }
  }

  /**
   * Commits a batch, running it again when the engine says it may (a
   * deadlock, a serialization failure, an id lost to a gap fill). A batch of
   * one needs no savepoint: its failure is the transaction's.
   */
  async #commit(batch: Pending[]): Promise<Outcome[]> {
    for (let attempt = 1;; attempt++) {
      try {
        return await this.write(async (tx) => {
          const pacer = new Pacer();
          if (batch.length === 1) {
            return [{ ok: true, result: await new TxnRunner(tx, pacer).run(batch[0].txn) }];
          }
          const outcomes: Outcome[] = [];
          for (const p of batch) outcomes.push(await this.#runSaved(tx, p.txn, pacer));
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
        const result = await new TxnRunner(tx, pacer).run(txn);
        await tx.releaseSavepoint();
        return { ok: true, result };
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
    if (failure.kind === "conflict") {
      return new BackendError(
        "unavailable",
        "etcdserver: request timed out, possibly due to conflict",
      );
    }
    if (failure.kind === "connection") {
      return new BackendError("unavailable", "etcdserver: database unavailable");
    }
    return new BackendError("unavailable", `etcdserver: ${(err as Error)?.message ?? err}`);
  }
}
