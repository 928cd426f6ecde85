/**
 * Child processes of the bench: spawned under `taskset` when pinned, with
 * output to a log file, tracked so that {@link killAll} can end every one of
 * them on exit, error or Ctrl-C.
 */

/** A running child process. */
export interface Child {
  pid: number;
  process: Deno.ChildProcess;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number>;
  /** Its stop signal, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Child>();
/** Set by {@link killAll}: no new processes from then on. */
let closed = false;

/** How {@link spawn} runs a process. */
export interface SpawnOptions {
  /** CPU list for `taskset -c`, e.g. "0"; unpinned if unset. */
  cpus?: string;
  /** File that receives stdout and stderr (appended). */
  logFile?: string;
  /** Pipe stdin and stdout to the caller instead (stderr still goes to the log). */
  pipes?: boolean;
  /** Called with each stderr line, before it is written to the log. */
  onStderrLine?: (line: string) => void;
  env?: Record<string, string>;
  /** Signal that asks the process to stop (default SIGTERM; PostgreSQL's fast shutdown is SIGINT). */
  stopSignal?: Deno.Signal;
}

/** Spawns `cmd args...`; `taskset` execs the command, so the pid is the command's own. */
export function spawn(cmd: string, args: string[], o: SpawnOptions = {}): Child {
  if (closed) throw new Error("shutting down");
  const argv = o.cpus !== undefined ? ["taskset", "-c", o.cpus, cmd, ...args] : [cmd, ...args];
  const process = new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdin: o.pipes ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
    env: o.env,
  }).spawn();
  const log = o.logFile
    ? Deno.openSync(o.logFile, { write: true, create: true, append: true })
    : undefined;
  const pumps = [
    o.pipes ? Promise.resolve() : pump(process.stdout, log),
    pump(process.stderr, log, o.onStderrLine),
  ];
  const exited = process.status.then(async (s) => {
    await Promise.allSettled(pumps);
    log?.close();
    live.delete(child);
    return s.code;
  });
  const child: Child = {
    pid: process.pid,
    process,
    exited,
    async stop(graceMs = 5000) {
      if (!live.has(child)) return;
      signal(process, o.stopSignal ?? "SIGTERM");
      const timer = setTimeout(() => signal(process, "SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(child);
  return child;
}

function signal(p: Deno.ChildProcess, sig: Deno.Signal): void {
  try {
    p.kill(sig);
  } catch {
    // already exited
  }
}

async function pump(
  stream: ReadableStream<Uint8Array>,
  log: Deno.FsFile | undefined,
  onLine?: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    if (log) log.writeSync(chunk);
    if (!onLine) continue;
    partial += decoder.decode(chunk, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop()!;
    for (const line of lines) onLine(line);
  }
}

/** Kills every child still running (SIGKILL), waits for them, and refuses new ones. */
export async function killAll(): Promise<void> {
  closed = true;
  const children = [...live];
  for (const c of children) signal(c.process, "SIGKILL");
  await Promise.allSettled(children.map((c) => c.exited));
}

/** Pins this process's threads (`taskset -a -p`); "0-N" unpins it. */
export async function pinSelf(cpus: string): Promise<void> {
  await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", cpus, String(Deno.pid)],
    stdout: "null",
  }).output();
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Runs a command and returns its trimmed stdout, or "" if that fails. */
export async function capture(cmd: string, args: string[]): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    return new TextDecoder().decode(out.stdout).trim();
  } catch {
    return "";
  }
}
