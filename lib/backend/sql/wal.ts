/**
 * Keeps a SQLite WAL small, without a second thread while the store is idle.
 *
 * Idle (a few KiB a second of role renewals), the writer's thread empties the
 * WAL itself once it holds 1 MiB (TRUNCATE between two write transactions: a
 * checkpoint of a few hundred pages, once every few minutes). A WAL that
 * reaches 1 MiB sooner than a minute after it was last emptied carries a
 * write load, and from then on a worker checkpoints it: it copies the WAL
 * back (PASSIVE, every 100 ms, checkpointer.ts) and, once it holds 16 MiB,
 * the writer's thread resets it between two write transactions (RESTART: the
 * few frames left are copied back and the next commit writes from the start
 * of the file again; a file that grew past 16 MiB in a burst is cut back to
 * 16 MiB then). PASSIVE alone lets the WAL grow with the write volume since
 * start: SQLite rewinds it only when a writer starts while every frame is
 * copied back, which steady writes never allow. A reset takes a few ms (4–9 ms
 * measured under a sustained write load); TRUNCATE, which also empties the
 * file, took 14–51.
 *
 * The worker starts on the first write load, not with the store, and then
 * stays: a worker is a whole V8 isolate (about 10 MiB of an idle daemon's
 * memory), and one that stopped gives back little of it.
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
/** WAL size at which the writer's thread empties it, or hands the WAL to the worker. */
const IDLE_CHECKPOINT_BYTES = 1024 * 1024;
/** A WAL that fills to {@link IDLE_CHECKPOINT_BYTES} within this long is a write load, ms. */
const WRITE_LOAD_MS = 60_000;

/** Bytes in a file, 0 when there is none. */
function fileBytes(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** The checkpoints of one database: on the writer's thread while idle, then a worker's. */
export class WalKeeper {
  #worker?: Worker;
  /** False until the worker has its connection: until then the writer's thread bounds the WAL. */
  #workerReady = false;
  #wanted = false;
  /** When the writer's thread last emptied the WAL (the store opened with an empty one). */
  #emptiedAt: number;

  /**
   * @param path the database file (its WAL is `<path>-wal`)
   * @param writer the write connection; resets run on it
   * @param inTransaction true while the writer is inside a transaction
   * @param now the clock that tells a write load from idle writes, ms
   */
  constructor(
    private readonly path: string,
    private readonly writer: DatabaseSync,
    private readonly busyTimeout: number,
    private readonly inTransaction: () => boolean,
    private readonly now: () => number = Date.now,
  ) {
    // The first commit after a reset cuts the file back to this size.
    writer.exec(`PRAGMA journal_size_limit = ${WAL_RESET_BYTES}`);
    this.#emptiedAt = now();
  }

  /** True once the checkpoint worker runs (a write load was seen). */
  get workerStarted(): boolean {
    return this.#worker !== undefined;
  }

  /** Call when a write transaction has ended: empties the WAL, or runs a reset the worker asked for. */
  afterTransaction(): void {
    if (!this.#worker) {
      this.#whileIdle();
      return;
    }
    if (!this.#workerReady) {
      // A worker takes a while to start, and a write load can fill many MiB meanwhile.
      if (fileBytes(`${this.path}-wal`) >= WAL_RESET_BYTES) this.#checkpoint("RESTART");
      return;
    }
    if (!this.#wanted) return;
    this.#wanted = false;
    this.#checkpoint("RESTART");
    this.#worker.postMessage("resume");
  }

  /** Stops the worker, if it started. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    const stopped = new Promise((resolve) => {
      worker.onmessage = (e) => e.data === "stopped" && resolve(undefined);
    });
    worker.postMessage("stop");
    await stopped;
    worker.terminate();
  }

  #whileIdle(): void {
    if (fileBytes(`${this.path}-wal`) < IDLE_CHECKPOINT_BYTES) return;
    if (this.now() - this.#emptiedAt < WRITE_LOAD_MS) {
      this.#startWorker();
      return;
    }
    // A WAL another process's reader still needs stays as it is: filled again within the
    // minute, it goes to the worker.
    this.#checkpoint("TRUNCATE");
    this.#emptiedAt = this.now();
  }

  /** A checkpoint on the writer's connection, waiting at most {@link RESET_BUSY_MS} for locks. */
  #checkpoint(mode: "RESTART" | "TRUNCATE"): void {
    try {
      this.writer.exec(`PRAGMA busy_timeout = ${RESET_BUSY_MS}`);
      this.writer.exec(`PRAGMA wal_checkpoint(${mode})`);
    } catch {
      // Busy or disk full: the worker asks for a reset again after its next checkpoint, and an
      // idle WAL is emptied after a later transaction.
    } finally {
      this.writer.exec(`PRAGMA busy_timeout = ${this.busyTimeout}`);
    }
  }

  #startWorker(): void {
    const worker = new Worker(new URL("./checkpointer.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e) => {
      if (e.data === "ready") this.#workerReady = true;
      if (e.data !== "reset") return;
      this.#wanted = true;
      if (!this.inTransaction()) this.afterTransaction();
    };
    const start: Start = {
      path: this.path,
      busyTimeout: this.busyTimeout,
      intervalMs: CHECKPOINT_INTERVAL_MS,
      resetBytes: WAL_RESET_BYTES,
    };
    worker.postMessage(start);
    this.#worker = worker;
  }
}
