/**
 * A worker that checkpoints a SQLite WAL on its own connection and thread, so
 * the writer's commits never pay for copying pages into the database file or
 * for the fsyncs that go with it. PASSIVE checkpoints never block writers.
 *
 * PASSIVE alone does not bound the WAL: SQLite rewinds it only when a writer
 * starts while every frame has been copied back, which under steady writes
 * never happens. So once the WAL holds `resetBytes`, the worker posts
 * `"reset"` and pauses until it gets `"resume"`: the writer's thread empties
 * the WAL between two of its transactions (see wal.ts), which is the only
 * moment the write lock is surely free.
 *
 * Messages in: {@link Start} to start, `"resume"`, `"stop"`.
 * Messages out: `"reset"`, `"stopped"`.
 */
import { DatabaseSync } from "node:sqlite";

/** The worker's start message. */
export interface Start {
  path: string;
  busyTimeout: number;
  intervalMs: number;
  /** WAL size at which the writer is asked to reset the WAL. */
  resetBytes: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Start | "resume" | "stop">) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

/** Bytes of the WAL header and of each frame's header. */
const WAL_HEADER = 32;
const FRAME_HEADER = 24;

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
/** True while a reset asked for is pending: no checkpoint may hold the lock it needs. */
let paused = false;

scope.onmessage = (e) => {
  if (e.data === "stop") {
    clearInterval(timer);
    db?.close();
    scope.postMessage("stopped");
    scope.close();
    return;
  }
  if (e.data === "resume") {
    paused = false;
    return;
  }
  const { path, busyTimeout, intervalMs, resetBytes } = e.data;
  db = new DatabaseSync(path);
  db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
  const { page_size: pageSize } = db.prepare("PRAGMA page_size").get() as { page_size: number };
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  timer = setInterval(() => {
    if (paused) return;
    try {
      // `log`: frames in the WAL since it was last rewound.
      const { log } = checkpoint.get() as { log: number };
      if (WAL_HEADER + log * (pageSize + FRAME_HEADER) >= resetBytes) {
        paused = true;
        scope.postMessage("reset");
      }
    } catch {
      // Busy, disk full or closing: the next tick tries again.
    }
  }, intervalMs);
};
