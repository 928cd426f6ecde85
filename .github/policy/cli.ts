/**
 * Command line front end of the fork policy.
 *
 * ```sh
 * deno run --allow-run=git --allow-read .github/policy/cli.ts tag v0.16.2.vcluster.0
 * deno run --allow-run=git --allow-read .github/policy/cli.ts \
 *   commits --base main [--repo <path>] origin/main..HEAD
 * ```
 *
 * Exit codes: 0 no violation, 1 violation(s), 2 bad usage or git failure
 * (no verdict could be reached).
 *
 * @module
 */

import {
  checkCommits,
  checkTag,
  classifyBase,
  formatViolation,
  isMerge,
  TAG_SCHEME,
} from "./mod.ts";
import { GitError, listCommits } from "./git.ts";

/** One-line usage text. */
export const USAGE =
  "usage: cli.ts tag <tag> | cli.ts commits --base <branch> [--repo <path>] <from>..<to>";

/** Output sink, so the CLI can be driven from tests without a subprocess. */
export interface Io {
  /** Print a result line (verdicts, violations). */
  out(line: string): void;
  /** Print a diagnostic line (usage errors, summaries of failures). */
  err(line: string): void;
}

const consoleIo: Io = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};

class UsageError extends Error {}

/** Parsed `commits` arguments. */
export interface CommitsArgs {
  /** Target branch of the pull request (`--base`). */
  base: string;
  /** Directory inside the repository (`--repo`, default: working directory). */
  repo: string;
  /** Exclusive lower end of the range. */
  from: string;
  /** Inclusive upper end of the range. */
  to: string;
}

/**
 * Split a `<from>..<to>` range. Both ends must be present, the three-dot form
 * is refused, and neither end may look like an option.
 *
 * @param range the range argument
 * @returns the two ends, or `null` when malformed
 */
export function parseRange(range: string): { from: string; to: string } | null {
  if (range.includes("...")) return null;
  const parts = range.split("..");
  if (parts.length !== 2) return null;
  const [from, to] = parts;
  for (const end of [from, to]) {
    if (end === "" || end.startsWith("-") || /\s/.test(end)) return null;
  }
  return { from, to };
}

/**
 * Parse the arguments after `commits`.
 *
 * @param args arguments after the subcommand
 * @param cwd default repository directory
 * @throws {UsageError} on bad usage
 */
function parseCommitsArgs(args: string[], cwd: () => string): CommitsArgs {
  let base: string | undefined;
  let repo: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (name === "--base" || name === "--repo") {
      let value: string | undefined;
      if (name !== a) value = a.slice(eq + 1);
      else {
        value = args[++i];
        if (value === undefined) throw new UsageError(`${name} needs a value`);
      }
      if (value === "") throw new UsageError(`${name} needs a non-empty value`);
      if (name === "--base") base = value;
      else repo = value;
    } else if (a.startsWith("-")) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  if (base === undefined) throw new UsageError("missing --base <branch>");
  if (positional.length !== 1) {
    throw new UsageError(
      positional.length === 0 ? "missing <from>..<to> range" : "expected exactly one range",
    );
  }
  const range = parseRange(positional[0]);
  if (!range) throw new UsageError(`malformed range "${positional[0]}" (want <from>..<to>)`);
  return { base, repo: repo ?? cwd(), ...range };
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

async function runCommits(args: string[], io: Io): Promise<number> {
  const opts = parseCommitsArgs(args, () => Deno.cwd());
  const commits = await listCommits(opts.repo, opts.from, opts.to);
  const range = `${opts.from}..${opts.to}`;
  const kind = classifyBase(opts.base);
  const merges = commits.filter(isMerge).length;
  const checked = commits.length - merges;
  if (kind === "unchecked") {
    io.out(
      `OK: base ${opts.base} has no fork policy rules; ` +
        `${plural(checked, "commit")} in ${range} not checked`,
    );
    return 0;
  }
  const violations = checkCommits(commits, opts.base);
  const scope = `${plural(checked, "commit")} in ${range} against base ${opts.base}` +
    (merges > 0 ? ` (${plural(merges, "merge commit")} skipped)` : "");
  if (violations.length === 0) {
    io.out(`OK: ${scope}, no violations`);
    return 0;
  }
  for (const v of violations) io.out(formatViolation(v));
  io.err(`FAIL: ${plural(violations.length, "violation")} in ${scope}`);
  return 1;
}

function runTag(args: string[], io: Io): number {
  if (args.length !== 1 || args[0] === "") throw new UsageError("tag takes exactly one tag name");
  const tag = args[0];
  const result = checkTag(tag);
  if (result.ok) {
    io.out(`OK: tag ${tag} follows the fork release scheme ${TAG_SCHEME}`);
    return 0;
  }
  io.out(result.reason);
  return 1;
}

/**
 * Run the CLI.
 *
 * @param args command line arguments (without the script name)
 * @param io where to print
 * @returns the process exit code
 */
export async function main(args: string[], io: Io = consoleIo): Promise<number> {
  const [sub, ...rest] = args;
  try {
    if (sub === "-h" || sub === "--help" || sub === "help") {
      io.out(USAGE);
      return 0;
    }
    if (sub === "tag") return runTag(rest, io);
    if (sub === "commits") return await runCommits(rest, io);
    throw new UsageError(sub === undefined ? "missing subcommand" : `unknown subcommand ${sub}`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}; ${USAGE}`);
      return 2;
    }
    if (e instanceof GitError) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
