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
 * 16 MiB then). The worker copies the frames back first, again while a copy
 * finds many new ones, so the reset copies few on the writer's thread (a
 * reset that copied 100 ms of a fast load took 20–160 ms there). The writer
 * also looks at the file's size after each commit (one seek): past 16 MiB it
 * asks the worker to checkpoint now, not at its next tick (a fast load appends
 * 10–16 MiB within one), and resets it itself while the worker is still
 * starting or once the file holds 24 MiB. Past, not at: the commit after a reset cuts the file to exactly
 * 16 MiB (`journal_size_limit`), and only frames beyond that make it larger.
 * PASSIVE alone lets the WAL grow with the write volume since start: SQLite
 * rewinds it only when a writer starts while every frame is copied back,
 * which steady writes never allow. A reset takes a few ms (4–9 ms
 * measured under a sustained write load); TRUNCATE, which also empties the
 * file, took 14–51.
 *
 * The worker starts on the first write load, not with the store, and then
 * stays: a worker is a whole V8 isolate (about 10 MiB of an idle daemon's
 * memory), and one that stopped gives back little of it.
 */
import type { DatabaseSync } from "node:sqlite";
import type { Resume, Start } from "./checkpointer.ts";

/** How often the worker copies the WAL into the database file, ms. */
const CHECKPOINT_INTERVAL_MS = 100;
/**
 * WAL size at which it is reset: well below the bound the WAL must keep,
 * max(64 MiB, 4 × the database), with what lands before the reset on top.
 */
const WAL_RESET_BYTES = 16 * 1024 * 1024;
/**
 * WAL size at which the writer's thread resets it without waiting for the
 * worker (a worker slow to get a core): the WAL's bound, with what lands
 * meanwhile on top.
 */
const WAL_FORCE_BYTES = 24 * 1024 * 1024;
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

/** The checkpoints of one database: on the writer's thread while idle, then a worker's. */
export class WalKeeper {
  #worker?: Worker;
  /** The WAL file, opened once it exists: SQLite keeps it while any of its connections is open. */
  #wal?: Deno.FsFile;
  /** False until the worker has its connection: until then the writer's thread resets the WAL. */
  #workerReady = false;
  /** True while the worker waits for a reset it asked for. */
  #wanted = false;
  /** True from asking the worker for a checkpoint until it answers. */
  #nudged = false;
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
    if (this.#wanted) {
      this.#wanted = false;
      const resume: Resume = { resume: this.#reset() ?? 0 };
      worker.postMessage(resume);
      return;
    }
    if (this.now() < this.#retryAt) return;
    const bytes = this.#walBytes();
    if (bytes <= WAL_RESET_BYTES) return;
    if (this.#workerReady && bytes <= WAL_FORCE_BYTES) {
      // The worker copies the frames back first, on its thread, then asks for the reset: one
      // here would copy them on the writer's thread, holding up every write meanwhile.
      if (!this.#nudged) worker.postMessage("now");
      this.#nudged = true;
    } else this.#reset();
  }

  /**
   * A reset on the writer's thread; one that had to wait for locks is not tried again for a tick.
   * Returns the frames the WAL held (it rewinds at the next commit), undefined when it failed.
   */
  #reset(): number | undefined {
    const started = this.now();
    const frames = this.#checkpoint("RESTART");
    if (frames !== undefined) return frames;
    // A reset that waited for locks (another process's reader or writer) must not stall every
    // commit after it. One refused at once (the worker is copying frames back) is tried again
    // after the next commit.
    if (this.now() - started >= RESET_BUSY_MS / 2) {
      this.#retryAt = this.now() + CHECKPOINT_INTERVAL_MS;
    }
    return undefined;
  }

  /**
   * Bytes in the WAL file, 0 while there is none. Read after every commit: one seek to the end of
   * a handle kept open costs ~0.8 µs, a stat of the path ~10.
   */
  #walBytes(): number {
    try {
      this.#wal ??= Deno.openSync(`${this.path}-wal`);
      return this.#wal.seekSync(0, Deno.SeekMode.End);
    } catch {
      return 0;
    }
  }

  /** Stops the worker, if it started, and closes the WAL file's handle. */
  async close(): Promise<void> {
    this.#wal?.close();
    this.#wal = undefined;
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
    if (this.#walBytes() < IDLE_CHECKPOINT_BYTES) return;
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
   * A checkpoint on the writer's connection, waiting at most {@link RESET_BUSY_MS} for locks.
   * Returns the frames the WAL held, undefined when it could not finish (busy, or disk full).
   */
  #checkpoint(mode: "RESTART" | "TRUNCATE"): number | undefined {
    try {
      this.writer.exec(`PRAGMA busy_timeout = ${RESET_BUSY_MS}`);
      const { busy, log } = this.writer.prepare(`PRAGMA wal_checkpoint(${mode})`).get() as {
        busy: number;
        log: number;
      };
      return busy === 0 ? log : undefined;
    } catch {
      // Disk full: the WAL is reset after a later transaction.
      return undefined;
    } finally {
      this.writer.exec(`PRAGMA busy_timeout = ${this.busyTimeout}`);
    }
  }

  #startWorker(): void {
    const worker = new Worker(new URL("./checkpointer.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e) => {
      if (e.data === "ready") this.#workerReady = true;
      if (e.data === "checked") this.#nudged = false;
      if (e.data !== "reset") return;
      this.#nudged = false;
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
