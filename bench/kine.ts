/** Our daemon, `deno run -A main.ts`, on a loopback port and a given endpoint. */
import { V8_FLAGS } from "../lib/config/v8_flags.ts";
import { freePort, spawn } from "./process.ts";
import { LogScan, type Server } from "./server.ts";

/** Default entry point: this repository's main.ts. */
export const KINE_MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * Starts the daemon with `--endpoint endpoint` (e.g. `sqlite://<dir>/state.db`,
 * `memory://`) and any `extraArgs`, logging to `logFile`. `main` may point at
 * another checkout.
 */
export function spawnKine(
  name: string,
  endpoint: string,
  cpus: string | undefined,
  logFile: string,
  main = KINE_MAIN,
  extraArgs: string[] = [],
): Server {
  const port = freePort();
  const metricsPort = freePort();
  const config = new URL("deno.json", new URL(".", `file://${main}`)).pathname;
  // Plain format: `<timestamp> <LEVEL> <message> <fields>`.
  const log = new LogScan((line) => {
    const m = /^\d{4}-\S+ ([A-Z]+) (.*)$/.exec(line);
    return m ? { level: m[1], message: m[2] } : undefined;
  });
  // Extra deno flags for profiling, e.g. BENCH_KINE_DENO_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/p".
  const extra = (Deno.env.get("BENCH_KINE_DENO_FLAGS") ?? "").split(" ").filter(Boolean);
  const child = spawn(Deno.execPath(), [
    "run",
    "-A",
    // As `deno task start` and the compiled binary run it.
    `--v8-flags=${V8_FLAGS}`,
    ...extra,
    "--config",
    config,
    main,
    "--listen-address",
    `127.0.0.1:${port}`,
    "--metrics-bind-address",
    `127.0.0.1:${metricsPort}`,
    "--endpoint",
    endpoint,
    ...extraArgs,
  ], {
    cpus,
    logFile,
    env: { NO_COLOR: "1" },
    onStderrLine: (line) => log.line(line),
  });
  return {
    name,
    pid: child.pid,
    target: `127.0.0.1:${port}`,
    child,
    log,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    stop: () => child.stop(),
  };
}
