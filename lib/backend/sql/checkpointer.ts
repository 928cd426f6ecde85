/**
 * A worker that checkpoints a SQLite WAL on its own connection and thread, so
 * the writer's commits never pay for copying pages into the database file or
 * for the fsyncs that go with it. PASSIVE checkpoints never block writers.
 *
 * PASSIVE alone does not bound the WAL: SQLite rewinds it only when a writer
 * starts while every frame has been copied back, which under steady writes
 * never happens. So once the WAL holds `resetBytes`, the worker posts
 * `"reset"` and pauses until it gets {@link Resume}: the writer's thread empties
 * the WAL between two of its transactions (see wal.ts), which is the only
 * moment the write lock is surely free.
 *
 * Besides its tick, it checkpoints when the writer sends `"now"` (the writer saw
 * the WAL file pass `resetBytes`) and answers `"reset"` or `"checked"`.
 *
 * Messages in: {@link Start} to start, `"now"`, {@link Resume}, `"stop"`.
 * Messages out: `"ready"` (its connection is open), `"reset"`, `"checked"`, `"stopped"`.
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

/** The writer's answer to `"reset"`: the frames the WAL held when it was reset (0 if it was not). */
export interface Resume {
  resume: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Start | Resume | "now" | "stop">) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

/** Bytes of the WAL header and of each frame's header. */
const WAL_HEADER = 32;
const FRAME_HEADER = 24;
/** Checkpoints before a reset is asked for, at most: each copies what came in during the last. */
const MAX_ROUNDS = 4;
/** New frames a reset may copy on the writer's thread (a few ms of work). */
const FEW_FRAMES = 64;

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
/** True while a reset asked for is pending: no checkpoint may hold the lock it needs. */
let paused = false;
/**
 * The frames of a WAL the writer reset: it rewinds at the writer's next commit, and until then a
 * checkpoint still finds them all, which asks for no second reset.
 */
let unrewound = 0;
/** One PASSIVE checkpoint; asks for a reset when the WAL is large. Set once the connection is open. */
let tick: (() => boolean) | undefined;

scope.onmessage = (e) => {
  if (e.data === "stop") {
    clearInterval(timer);
    db?.close();
    scope.postMessage("stopped");
    scope.close();
    return;
  }
  if (typeof e.data === "object" && "resume" in e.data) {
    paused = false;
    unrewound = e.data.resume;
    return;
  }
  if (e.data === "now") {
    if (!tick?.()) scope.postMessage("checked");
    return;
  }
  const { path, busyTimeout, intervalMs, resetBytes } = e.data;
  db = new DatabaseSync(path);
  db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
  const { page_size: pageSize } = db.prepare("PRAGMA page_size").get() as { page_size: number };
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  tick = () => {
    if (paused) return false;
    try {
      // `log`: frames in the WAL since it was last rewound, all copied back when `checkpointed`
      // equals it (PASSIVE copies what was committed when it started).
      let { log } = checkpoint.get() as { log: number };
      if (log === unrewound) return false;
      unrewound = 0;
      if (WAL_HEADER + log * (pageSize + FRAME_HEADER) < resetBytes) return false;
      // The reset copies what was committed since, on the writer's thread: copy that here
      // first, again while a round finds many new frames (the next round finds fewer).
      for (let round = 1; round < MAX_ROUNDS; round++) {
        const before = log;
        ({ log } = checkpoint.get() as { log: number });
        if (log - before <= FEW_FRAMES) break;
      }
      paused = true;
      scope.postMessage("reset");
      return true;
    } catch {
      // Busy, disk full or closing: the next tick tries again.
      return false;
    }
  };
  timer = setInterval(tick, intervalMs);
  scope.postMessage("ready");
};
