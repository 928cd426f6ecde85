/** A kine daemon as a child process (`deno run main.ts`), for tests that need a process. */
const ROOT = new URL("../..", import.meta.url).pathname;
const MAIN = `${ROOT}main.ts`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A kine child process (`deno run main.ts`), its stderr collected. */
export interface Child {
  /** `127.0.0.1:<port>` */
  target: string;
  log(): string;
  exited(): boolean;
  /** SIGTERM, then the exit status. */
  stop(): Promise<Deno.CommandStatus>;
  /** SIGKILL, then the exit status. */
  kill(): Promise<Deno.CommandStatus>;
}

/** Extra settings of the child process. */
export interface SpawnOptions {
  /** Variables added to (or, with `clearEnv`, making up) the child's environment. */
  env?: Record<string, string>;
  clearEnv?: boolean;
  /** A command prefix the child runs under, e.g. `["unshare", "--mount", …]`. */
  wrap?: string[];
}

/**
 * Starts `main.ts` with `args` in `cwd` (where a crashing child would leave a core file). Throws
 * with the child's log when it exits, or has not started within 30 s.
 */
export async function spawnKine(
  cwd: string,
  args: string[],
  opts: SpawnOptions = {},
): Promise<Child> {
  const argv = ["run", "--allow-all", "--config", `${ROOT}deno.json`, MAIN, ...args];
  const [cmd, ...cmdArgs] = [...(opts.wrap ?? []), Deno.execPath(), ...argv];
  const child = new Deno.Command(cmd, {
    args: cmdArgs,
    env: opts.env,
    clearEnv: opts.clearEnv,
    cwd,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let log = "";
  let exited = false;
  const reading = (async () => {
    const d = new TextDecoder();
    for await (const chunk of child.stderr) log += d.decode(chunk, { stream: true });
  })();
  const status = child.status.then((st) => {
    exited = true;
    return st;
  });
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) child.kill(signal);
    const st = await status;
    await reading;
    return st;
  };
  const deadline = Date.now() + 30_000;
  let m: RegExpMatchArray | null;
  while (!(m = log.match(/Kine available at https?:\/\/(\S+)/))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(`kine did not start:\n${log}`);
    }
    await sleep(25);
  }
  return {
    target: m[1],
    log: () => log,
    exited: () => exited,
    stop: () => stop("SIGTERM"),
    kill: () => stop("SIGKILL"),
  };
}

export function kineArgs(path: string, ...extra: string[]): string[] {
  return endpointArgs(`sqlite://${path}`, ...extra);
}

/** Flags for a kine on `endpoint`, listening on a free loopback port, without metrics. */
export function endpointArgs(endpoint: string, ...extra: string[]): string[] {
  return [
    "--endpoint",
    endpoint,
    "--listen-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
    ...extra,
  ];
}

/** Spawns kine expecting it not to start; resolves with its log (`kine did not start: …`). */
export async function spawnKineFails(
  cwd: string,
  args: string[],
  opts: SpawnOptions = {},
): Promise<string> {
  let kine: Child;
  try {
    kine = await spawnKine(cwd, args, opts);
  } catch (err) {
    return (err as Error).message;
  }
  await kine.stop();
  throw new Error(`kine started:\n${kine.log()}`);
}

/** Runs `fn` against a kine started with `args`, then stops it; resolves with kine's log. */
export async function withDaemon(
  cwd: string,
  args: string[],
  opts: SpawnOptions,
  fn: (k: Child) => Promise<void>,
): Promise<string> {
  const k = await spawnKine(cwd, args, opts);
  try {
    await fn(k);
  } finally {
    await k.stop();
  }
  return k.log();
}
