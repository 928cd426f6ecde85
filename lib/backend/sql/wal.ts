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
 * 16 MiB then). The writer's thread also looks at the file's size after each
 * commit (one stat) and resets a WAL grown past 16 MiB without waiting for
 * the worker: a fast write load appends 10–16 MiB within one 100 ms tick, and
 * a worker still starting up asks for nothing. Past, not at: the commit after
 * a reset cuts the file to exactly 16 MiB (`journal_size_limit`), and only
 * frames beyond that make it larger. PASSIVE alone lets the WAL grow with the write volume since
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
  /** True while the worker waits for a reset it asked for. */
  #wanted = false;
  /** A reset that had to wait for locks is not tried again before this time, ms. */
  #retryAt = 0;
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

  /** Call when a write transaction has ended: empties the WAL, or resets it once it is large. */
  afterTransaction(): void {
    const worker = this.#worker;
    if (!worker) {
      this.#whileIdle();
      return;
    }
    const wanted = this.#wanted;
    if (!wanted && (this.now() < this.#retryAt || !this.#overgrown())) return;
    this.#wanted = false;
    const started = this.now();
    if (!this.#checkpoint("RESTART")) {
      // A reset that waited for locks (another process's reader or writer) must not stall
      // every commit after it: wait a worker tick. One refused at once (the worker is copying
      // frames back) is tried again after the next commit.
      const waited = this.now() - started;
      if (waited >= RESET_BUSY_MS / 2) this.#retryAt = this.now() + CHECKPOINT_INTERVAL_MS;
    }
    if (wanted) worker.postMessage("resume");
  }

  /** True when the WAL file holds more than {@link WAL_RESET_BYTES}: the commits since the last reset do. */
  #overgrown(): boolean {
    return fileBytes(`${this.path}-wal`) > WAL_RESET_BYTES;
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

  /**
   * A checkpoint on the writer's connection, waiting at most {@link RESET_BUSY_MS} for locks;
   * false when it could not finish (busy, or the disk is full).
   */
  #checkpoint(mode: "RESTART" | "TRUNCATE"): boolean {
    try {
      this.writer.exec(`PRAGMA busy_timeout = ${RESET_BUSY_MS}`);
      const { busy } = this.writer.prepare(`PRAGMA wal_checkpoint(${mode})`).get() as {
        busy: number;
      };
      return busy === 0;
    } catch {
      // Disk full: the WAL is reset after a later transaction.
      return false;
    } finally {
      this.writer.exec(`PRAGMA busy_timeout = ${this.busyTimeout}`);
    }
  }

  #startWorker(): void {
    const worker = new Worker(new URL("./checkpointer.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e) => {
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
