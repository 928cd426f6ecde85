/**
 * The kine command: parses flags and environment, starts the server, and
 * stops it on SIGINT/SIGTERM (a second signal exits at once with status 1).
 */
import { ConfigError, parseArgs, startKine } from "./lib/mod.ts";
import { createLogger } from "./lib/log/mod.ts";

/** How often the parent is looked for, ms. */
const PARENT_CHECK_MS = 500;

/**
 * Calls `then` once the parent process has exited (this process was handed
 * to another parent): `deno task` runs kine as its child, and a task runner
 * killed with SIGKILL cannot pass a signal on.
 */
function onParentExit(then: () => void): void {
  const parent = Deno.ppid;
  const timer = setInterval(() => {
    if (Deno.ppid === parent) return;
    clearInterval(timer);
    then();
  }, PARENT_CHECK_MS);
  Deno.unrefTimer(timer);
}

if (import.meta.main) {
  // `deno task start -- <flags>` hands the "--" through; kine's flags follow it.
  const argv = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  // `kine migrate …` copies between datastores (lib/migrate) instead of serving.
  // Loaded only then, so that serving never pays for it.
  if (argv[0] === "migrate") {
    const { runMigrate } = await import("./lib/migrate/mod.ts");
    Deno.exit(await runMigrate(argv.slice(1)));
  }
  const parsed = parseArgs(argv, Deno.env.toObject());
  switch (parsed.kind) {
    case "help":
    case "version":
      console.log(parsed.text);
      Deno.exit(0);
      break;
    case "error":
      console.error(`kine: ${parsed.message}`);
      Deno.exit(2);
  }
  const config = parsed.config;
  const logger = createLogger({ format: config.logFormat, debug: config.debug });
  let kine;
  try {
    kine = await startKine(config, logger);
  } catch (err) {
    logger.error(`failed to start kine: ${String((err as Error)?.message ?? err)}`);
    // 2: the configuration must change; 1: the environment failed (a busy port, a database down).
    Deno.exit(err instanceof ConfigError ? 2 : 1);
  }
  let stopping = false;
  const stop = () => {
    if (stopping) Deno.exit(1);
    stopping = true;
    logger.info("shutting down");
    kine.close().then(() => Deno.exit(0), (err) => {
      logger.error("shutdown failed", { error: String(err) });
      Deno.exit(1);
    });
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  if (config.exitWithParent) {
    onParentExit(() => {
      logger.warn("parent process exited");
      stop();
    });
  }
}
