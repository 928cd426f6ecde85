/**
 * A worker that checkpoints a SQLite WAL on its own connection and thread, so
 * the writer's commits never pay for copying pages into the database file or
 * for the fsyncs that go with it. PASSIVE checkpoints never block writers.
 *
 * Messages in: `{ path, busyTimeout, intervalMs }` to start, `"stop"` to stop.
 */
import { DatabaseSync } from "node:sqlite";

interface Start {
  path: string;
  busyTimeout: number;
  intervalMs: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Start | "stop">) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
};

let db: DatabaseSync | undefined;
let timer: ReturnType<typeof setInterval> | undefined;

scope.onmessage = (e) => {
  if (e.data === "stop") {
    clearInterval(timer);
    db?.close();
    scope.postMessage("stopped");
    scope.close();
    return;
  }
  const { path, busyTimeout, intervalMs } = e.data;
  db = new DatabaseSync(path);
  db.exec(`PRAGMA busy_timeout = ${busyTimeout}`);
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  timer = setInterval(() => {
    try {
      checkpoint.get();
    } catch {
      // Busy or closing: the next tick tries again.
    }
  }, intervalMs);
};
