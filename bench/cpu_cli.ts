/**
 * The command line the CPU benches share (`read_cpu.ts`, `write_cpu.ts`,
 * `bulk_cpu.ts`): numeric `--name N` flags, and the engines named on it, each
 * run in turn in a temporary directory of its own.
 *
 * @module
 */
import type { Engine } from "./databases.ts";
import { initClockTicks } from "./procfs.ts";

/** The value of `--name N` among the arguments, or `fallback`. */
export function flag(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}

/**
 * Runs `run` for each engine named on the command line (none: `defaults`),
 * in one temporary directory named with `prefix`, removed afterwards.
 */
export async function forEngines<E extends Engine | "sqlite">(
  prefix: string,
  defaults: E[],
  run: (engine: E, tmp: string) => Promise<void>,
): Promise<void> {
  await initClockTicks();
  const tmp = await Deno.makeTempDir({ prefix });
  try {
    const named = Deno.args.filter((a, i) =>
      !a.startsWith("--") && !Deno.args[i - 1]?.startsWith("--")
    );
    for (const e of (named.length ? named : defaults) as E[]) await run(e, tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
}
