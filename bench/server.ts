/** What the bench needs from a server process, whichever it is. */
import type { Child } from "./process.ts";
import { Conn, errorText } from "./rpc.ts";

/** A running etcd-compatible server. */
export interface Server {
  /** Column label: `etcd`, `kine-sqlite`, ... */
  name: string;
  pid: number;
  /** grpc-js target, `127.0.0.1:<port>`. */
  target: string;
  child: Child;
  /** Its log: warnings and errors, last lines. */
  log: LogScan;
  /** Prometheus `/metrics` URL, for servers that expose the bench's metrics (our daemon). */
  metricsUrl?: string;
  stop(): Promise<void>;
}

/** Thrown when a server exits or never answers while starting. */
export class StartError extends Error {}

/** Warnings and errors a server logs, by message, and its last few log lines. */
export class LogScan {
  readonly issues = new Map<string, number>();
  readonly tail: string[] = [];

  /** `parse` gives a line's level and message, or undefined for other lines. */
  constructor(readonly parse: (line: string) => { level: string; message: string } | undefined) {}

  line(line: string): void {
    this.tail.push(line);
    if (this.tail.length > 5) this.tail.shift();
    const entry = this.parse(line);
    if (!entry || !/^(warn|warning|error|fatal|panic)$/i.test(entry.level)) return;
    const key = `${entry.level.toUpperCase()} ${entry.message}`.replace(/\s+/g, " ").slice(0, 140);
    this.issues.set(key, (this.issues.get(key) ?? 0) + 1);
  }
}

/**
 * Polls a Range of one key on a fresh connection every 10 ms until one
 * succeeds; returns the ms since `spawnedAt` (the cold start time).
 */
export async function waitForRange(
  server: Server,
  spawnedAt: number,
  timeoutMs = 60_000,
): Promise<number> {
  let exited = false;
  server.child.exited.then(() => exited = true);
  let last = "";
  while (performance.now() - spawnedAt < timeoutMs) {
    if (exited) {
      const why = server.log.tail.filter((l) => l.trim()).pop() ?? "no output";
      throw new StartError(`${server.name} exited while starting: ${why}`);
    }
    const conn = new Conn(server.target);
    try {
      await conn.range({ key: new Uint8Array([0x2f]) }, 1000);
      return performance.now() - spawnedAt;
    } catch (err) {
      last = errorText(err);
    } finally {
      conn.close();
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new StartError(`${server.name} did not answer within ${timeoutMs} ms (${last})`);
}
