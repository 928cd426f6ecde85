/**
 * Keeps a SQLite WAL small: a worker copies it back (PASSIVE, every 100 ms,
 * checkpointer.ts) and, once it holds 16 MiB, the writer's thread resets it
 * between two write transactions (RESTART: the few frames left are copied
 * back and the next commit writes from the start of the file again; a file
 * that grew past 16 MiB in a burst is cut back to 16 MiB then). PASSIVE
 * alone lets the WAL grow with the write volume since start: SQLite rewinds
 * it only when a writer starts while every frame is copied back, which steady
 * writes never allow. A reset takes a few ms (4–9 ms measured under a
 * sustained write load); TRUNCATE, which also empties the file, took 14–51.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Start } from "./checkpointer.ts";

/** How often the worker copies the WAL into the database file, ms. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * WAL size at which it is reset: well below the bound the WAL must keep,
 * max(64 MiB, 4 × the database), with what lands before the reset on top.
 */
const WAL_RESET_BYTES = 16 * 1024 * 1024;
/**
 * How long a reset may wait for the locks it needs (a reader of another
 * process, the worker finishing a tick), ms. It runs on the writer's thread,
 * so it is short; a reset that times out is tried again later.
 */
const RESET_BUSY_MS = 50;

/** The checkpoint worker of one database and the resets it asks the writer for. */
export class WalKeeper {
  readonly #worker: Worker;
  #wanted = false;

  /**
   * @param writer the write connection; resets run on it
   * @param inTransaction true while the writer is inside a transaction
   */
  constructor(
    path: string,
    private readonly writer: DatabaseSync,
    private readonly busyTimeout: number,
    private readonly inTransaction: () => boolean,
  ) {
    // The first commit after a reset cuts the file back to this size.
    writer.exec(`PRAGMA journal_size_limit = ${WAL_RESET_BYTES}`);
    this.#worker = new Worker(new URL("./checkpointer.ts", import.meta.url), { type: "module" });
    this.#worker.onmessage = (e) => {
      if (e.data !== "reset") return;
      this.#wanted = true;
      if (!this.inTransaction()) this.afterTransaction();
    };
    const start: Start = {
      path,
      busyTimeout,
      intervalMs: CHECKPOINT_INTERVAL_MS,
      resetBytes: WAL_RESET_BYTES,
    };
    this.#worker.postMessage(start);
  }

  /** Call when a write transaction has ended: runs a reset the worker asked for. */
  afterTransaction(): void {
    if (!this.#wanted) return;
    this.#wanted = false;
    try {
      this.writer.exec(`PRAGMA busy_timeout = ${RESET_BUSY_MS}`);
      this.writer.exec("PRAGMA wal_checkpoint(RESTART)");
    } catch {
      // Busy or disk full: the worker asks again once it has checkpointed once more.
    } finally {
      this.writer.exec(`PRAGMA busy_timeout = ${this.busyTimeout}`);
      this.#worker.postMessage("resume");
    }
  }

  /** Stops the worker. */
  async close(): Promise<void> {
    const worker = this.#worker;
    const stopped = new Promise((resolve) => {
      worker.onmessage = (e) => e.data === "stopped" && resolve(undefined);
    });
    worker.postMessage("stop");
    await stopped;
    worker.terminate();
  }
}
