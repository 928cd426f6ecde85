/**
 * `deno task compile --target <rust-triple> --output <file>`: builds the kine
 * binary with `deno compile`, stamping the version from the git tag (or
 * `$KINE_VERSION`) and the commit into lib/config/version.ts for the build.
 * `--dry-run` prints the stamped version file and the compile command.
 */

import { V8_FLAGS } from "../../lib/config/v8_flags.ts";

/** `--help`. */
export const USAGE =
  `usage: deno task compile [--target <rust-triple>] [--output <file>] [--dry-run]

Builds the kine binary with \`deno compile\`, stamping the version (the git tag,
or $KINE_VERSION) and the commit.

  --target   x86_64-unknown-linux-gnu or aarch64-unknown-linux-gnu (default: this machine)
  --output   the binary to write (default: dist/kine)
  --dry-run  print the stamped version file and the compile command, build nothing

deno compile downloads the Deno runtime for the target from dl.deno.land. Offline,
point DENORT_BIN at a denort binary of this Deno version (2.9.3) for the target.
`;

const VALUE_FLAGS = ["--target", "--output"];
const BOOL_FLAGS = ["--dry-run", "--help", "-h"];

/** The one-line problem with the arguments, or undefined. */
export function checkArgs(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (VALUE_FLAGS.includes(args[i])) {
      if (i + 1 >= args.length || args[i + 1].startsWith("-")) return `${args[i]} needs a value`;
      i++;
    } else if (!BOOL_FLAGS.includes(args[i])) return `unknown argument ${JSON.stringify(args[i])}`;
  }
  return undefined;
}

/**
 * What a failed `deno compile` says, in one line when the runtime could not be fetched (its own
 * error is a download failure with a stack backtrace); otherwise undefined.
 */
export function runtimeFetchError(stderr: string, target: string | undefined): string | undefined {
  if (!/dl\.deno\.land|denort|download/i.test(stderr)) return undefined;
  if (
    !/error sending request|dns error|failed to lookup|connection refused|download failed|timed out|certificate|404/i
      .test(stderr)
  ) {
    return undefined;
  }
  return `compile: cannot fetch the Deno runtime (denort) for ${
    target ?? "this machine"
  } from dl.deno.land; set DENORT_BIN to a local denort binary of Deno ${Deno.version.deno} to build offline`;
}
const VERSION_FILE = new URL("../../lib/config/version.ts", import.meta.url);
const ROOT = new URL("../../", import.meta.url);

function arg(name: string): string | undefined {
  const i = Deno.args.indexOf(name);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}

async function git(...args: string[]): Promise<string> {
  const out = await new Deno.Command("git", { args, cwd: ROOT, stderr: "null" }).output();
  return out.success ? new TextDecoder().decode(out.stdout).trim() : "";
}

/** The version file's text for a build of `version` at `commit`. */
export function versionSource(version: string, commit: string): string {
  return `/**
 * Build identification. The release build overwrites this file with the real values.
 *
 * @module
 */

/** Release version printed by \`kine --version\`; \`"dev"\` for development builds. */
export const VERSION = ${JSON.stringify(version)};

/** Git commit the binary was built from; \`"HEAD"\` for development builds. */
export const GIT_COMMIT = ${JSON.stringify(commit)};
`;
}

/** The \`deno compile\` arguments: everything the binary reads at run time is embedded. */
export function compileArgs(target: string | undefined, output: string): string[] {
  return [
    "compile",
    "--allow-all",
    `--v8-flags=${V8_FLAGS}`,
    "--include",
    "proto/",
    "--include",
    "lib/backend/sql/checkpointer.ts",
    "--include",
    "lib/auth/bcrypt_worker.ts",
    ...(target ? ["--target", target] : []),
    "--output",
    output,
    "main.ts",
  ];
}

if (import.meta.main) {
  if (Deno.args.includes("--help") || Deno.args.includes("-h")) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const problem = checkArgs(Deno.args);
  if (problem) {
    console.error(`compile: ${problem} (see deno task compile --help)`);
    Deno.exit(2);
  }
  const output = arg("--output") ?? "dist/kine";
  const target = arg("--target");
  const version = Deno.env.get("KINE_VERSION") ||
    await git("describe", "--tags", "--exact-match") || await git("describe", "--tags") || "dev";
  const commit = await git("rev-parse", "--short", "HEAD") || "HEAD";
  const stamped = versionSource(version, commit);
  const args = compileArgs(target, output);
  if (Deno.args.includes("--dry-run")) {
    console.log(stamped);
    console.log(["deno", ...args].join(" "));
    Deno.exit(0);
  }
  const original = await Deno.readTextFile(VERSION_FILE);
  await Deno.writeTextFile(VERSION_FILE, stamped);
  try {
    const child = new Deno.Command(Deno.execPath(), { args, cwd: ROOT, stderr: "piped" }).spawn();
    // Held back until the end: a failed runtime download is told in one line instead.
    const stderr = await new Response(child.stderr).text();
    const { code } = await child.status;
    const fetchError = code === 0 ? undefined : runtimeFetchError(stderr, target);
    if (fetchError) console.error(fetchError);
    else await Deno.stderr.write(new TextEncoder().encode(stderr));
    Deno.exitCode = code;
  } finally {
    await Deno.writeTextFile(VERSION_FILE, original);
  }
}
