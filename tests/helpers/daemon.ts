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

/** Starts `main.ts` with `args` in `cwd` (where a crashing child would leave a core file). */
export async function spawnKine(cwd: string, args: string[]): Promise<Child> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", "--config", `${ROOT}deno.json`, MAIN, ...args],
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
  return [
    "--endpoint",
    `sqlite://${path}`,
    "--listen-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
    ...extra,
  ];
}
