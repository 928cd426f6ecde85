/**
 * `deno task compile --target <rust-triple> --output <file>`: builds the kine
 * binary with `deno compile`, stamping the version from the git tag (or
 * `$KINE_VERSION`) and the commit into lib/config/version.ts for the build.
 * `--dry-run` prints the stamped version file and the compile command.
 */
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
    const { code } = await new Deno.Command(Deno.execPath(), { args, cwd: ROOT }).spawn().status;
    Deno.exitCode = code;
  } finally {
    await Deno.writeTextFile(VERSION_FILE, original);
  }
}
