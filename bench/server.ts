/** What the bench needs from a server process, whichever it is, and from a whole stack. */
import type { Database } from "./databases.ts";
import type { LoadGen } from "./loadgen.ts";
import type { Child } from "./process.ts";
import { cpuSeconds, memory, treeCpuSeconds, treeMemory } from "./procfs.ts";

/** A running etcd-compatible server process. */
export interface Server {
  /** Column label: `etcd`, `kine-sqlite`, ... */
  name: string;
  pid: number;
  /** gRPC target, `127.0.0.1:<port>`. */
  target: string;
  child: Child;
  /** Its log: warnings and errors, last lines. */
  log: LogScan;
  /** Prometheus `/metrics` URL, for servers that expose the bench's metrics (our daemon). */
  metricsUrl?: string;
  stop(): Promise<void>;
}

/**
 * What a workload measures: one server, or several kine processes on one
 * store, plus the private database server they use. Its CPU and memory are
 * those of every process in it, so kine on PostgreSQL is compared with etcd
 * as a whole.
 */
export interface Stack {
  /** Column label: `etcd`, `kine-postgres`, `3× kine-postgres`. */
  name: string;
  servers: Server[];
  db?: Database;
}

/** CPU seconds used so far by every process of the stack (the database's whole process tree). */
export function stackCpuSeconds(s: Stack): number {
  const own = s.servers.reduce((n, x) => n + cpuSeconds(x.pid), 0);
  return own + (s.db ? treeCpuSeconds(s.db.pid) : 0);
}

/** Peak RSS (VmHWM) of the servers, summed, in bytes. */
export function stackPeakRss(s: Stack): number {
  return s.servers.reduce((n, x) => n + memory(x.pid).hwm, 0);
}

/** Proportional set size of the database server's process tree, bytes (0 without one). */
export function databaseMemory(s: Stack): number {
  return s.db ? treeMemory(s.db.pid) : 0;
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

/** Resolves once `target` (`host:port`) accepts a TCP connection, tried every 10 ms. */
async function listening(target: string, timeoutMs: number): Promise<void> {
  const i = target.lastIndexOf(":");
  const address = { hostname: target.slice(0, i), port: Number(target.slice(i + 1)) };
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      (await Deno.connect(address)).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  throw new Error(`nothing listens on ${target} after ${timeoutMs} ms`);
}

/**
 * Waits until the server answers a Range of one key on a fresh connection
 * (tried every 10 ms by the load generator); returns the ms since
 * `spawnedAt` (the cold start time).
 */
export async function waitForRange(
  server: Server,
  loadgen: LoadGen,
  spawnedAt: number,
  timeoutMs = 60_000,
): Promise<number> {
  const exited = server.child.exited.then(() => {
    const why = server.log.tail.filter((l) => l.trim()).pop() ?? "no output";
    throw new StartError(`${server.name} exited while starting: ${why}`);
  });
  try {
    // Only once the port accepts: a Go client whose first dial is refused waits out gRPC's 1 s
    // reconnect backoff, which every start measured that way included.
    await Promise.race([listening(server.target, timeoutMs), exited]);
    await Promise.race([loadgen.call("waitRange", { target: server.target, timeoutMs }), exited]);
  } catch (err) {
    if (err instanceof StartError) throw err;
    throw new StartError(`${server.name}: ${(err as Error).message}`);
  }
  return performance.now() - spawnedAt;
}
