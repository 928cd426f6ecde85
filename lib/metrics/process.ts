/**
 * The Prometheus client's standard process metrics (`process_*`), read at scrape time from Deno
 * and, on Linux, from `/proc/self`.
 *
 * @module
 */
import { cpuUsage } from "node:process";
import { type Collector, escapeHelp, formatValue, type Registry } from "./registry.ts";

/** A counter whose value is read at scrape time (the process's CPU time). */
function sampledCounter(name: string, help: string, read: () => number): Collector {
  return {
    name,
    collect(out: string[]): void {
      out.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} counter`);
      out.push(`${name} ${formatValue(read())}`);
    },
  };
}

/** Open file descriptors: the entries of `/proc/self/fd` (Linux). */
function openFds(): number {
  let n = 0;
  for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
  return n - 1; // the descriptor reading the directory
}

/** The soft limit on open files, from `/proc/self/limits` (Linux). */
function maxFds(): number {
  const line = /^Max open files\s+(\d+|unlimited)/m.exec(
    Deno.readTextFileSync("/proc/self/limits"),
  );
  if (!line) throw new Error("no open-files limit");
  return line[1] === "unlimited" ? Infinity : Number(line[1]);
}

/**
 * Registers `process_cpu_seconds_total`, `process_resident_memory_bytes`,
 * `process_start_time_seconds`, `process_open_fds` and `process_max_fds` (the last two are left out
 * where `/proc` is missing).
 */
export function registerProcessMetrics(registry: Registry): void {
  registry.register(
    sampledCounter(
      "process_cpu_seconds_total",
      "Total user and system CPU time spent in seconds.",
      () => {
        const { user, system } = cpuUsage();
        return (user + system) / 1e6;
      },
    ),
  );
  registry.gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes.",
    collect: () => Deno.memoryUsage().rss,
  });
  registry.gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since unix epoch in seconds.",
    collect: () => performance.timeOrigin / 1000,
  });
  registry.gauge({
    name: "process_open_fds",
    help: "Number of open file descriptors.",
    collect: openFds,
  });
  registry.gauge({
    name: "process_max_fds",
    help: "Maximum number of open file descriptors.",
    collect: maxFds,
  });
}
