/**
 * Command line front end of the fork policy.
 *
 * ```sh
 * deno run --allow-run=git --allow-read .github/policy/cli.ts tag v0.16.2.vcluster.0
 * deno run --allow-run=git --allow-read .github/policy/cli.ts \
 *   commits --base main [--repo <path>] origin/main..HEAD
 * deno run --allow-run=git --allow-read .github/policy/cli.ts \
 *   replay --next release/vcluster/v0.16.3 [--previous release/vcluster/v0.16.2] \
 *   [--upstream-previous v0.16.2] [--upstream-next v0.16.3] [--repo <path>]
 * deno run --allow-run=git --allow-read .github/policy/cli.ts \
 *   tag-origin v0.15.0 [--repo <path>] [--upstream-ref <ref>]
 * ```
 *
 * Exit codes: 0 no violation, 1 violation(s), 2 bad usage or git failure
 * (no verdict could be reached).
 *
 * @module
 */

import {
  checkCommits,
  checkSubject,
  checkTag,
  classifyBase,
  formatViolation,
  isMerge,
  TAG_SCHEME,
} from "./mod.ts";
import {
  describeCommit,
  GitError,
  isAncestor,
  listCommits,
  listRefs,
  patchIds,
  reachableFromAny,
  resolveCommit,
} from "./git.ts";
import {
  formatReplay,
  type LineCommit,
  matchReplay,
  newestOlderLine,
  parseVersion,
  UPSTREAM_REMOTE,
  UPSTREAM_TAGS,
  upstreamTagOf,
} from "./replay.ts";

/** One-line usage text. */
export const USAGE = "usage: cli.ts tag <tag> | " +
  "cli.ts commits --base <branch> [--repo <path>] <from>..<to> | " +
  "cli.ts replay --next <ref> [--previous <ref>] [--upstream-previous <tag>] " +
  "[--upstream-next <tag>] [--repo <path>] | " +
  "cli.ts tag-origin <tag> [--repo <path>] [--upstream-ref <ref>]";

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

/** The repository does not allow a verdict (e.g. a line not cut from its tag). */
class NoVerdict extends Error {}

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
 * Split arguments into `--name value` / `--name=value` options (only the
 * given names, each with a non-empty value; a repeated option keeps the last
 * value) and positional arguments.
 *
 * @param args arguments after the subcommand
 * @param names the options the subcommand takes
 * @throws {UsageError} on an unknown option or a missing value
 */
function parseOptions(
  args: string[],
  names: readonly string[],
): { options: Map<string, string>; positional: string[] } {
  const options = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    if (names.includes(name)) {
      let value: string | undefined;
      if (name !== a) value = a.slice(eq + 1);
      else {
        value = args[++i];
        if (value === undefined) throw new UsageError(`${name} needs a value`);
      }
      if (value === "") throw new UsageError(`${name} needs a non-empty value`);
      // Values reach git as revisions; one looking like an option is a mistake.
      if (value.startsWith("-")) {
        throw new UsageError(`${name} value ${value} looks like an option`);
      }
      options.set(name, value);
    } else if (a.startsWith("-")) {
      throw new UsageError(`unknown option ${a}`);
    } else {
      positional.push(a);
    }
  }
  return { options, positional };
}

/**
 * Parse the arguments after `commits`.
 *
 * @param args arguments after the subcommand
 * @param cwd default repository directory
 * @throws {UsageError} on bad usage
 */
function parseCommitsArgs(args: string[], cwd: () => string): CommitsArgs {
  const { options, positional } = parseOptions(args, ["--base", "--repo"]);
  const base = options.get("--base");
  if (base === undefined) throw new UsageError("missing --base <branch>");
  if (positional.length !== 1) {
    throw new UsageError(
      positional.length === 0 ? "missing <from>..<to> range" : "expected exactly one range",
    );
  }
  const range = parseRange(positional[0]);
  if (!range) throw new UsageError(`malformed range "${positional[0]}" (want <from>..<to>)`);
  return { base, repo: options.get("--repo") ?? cwd(), ...range };
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
 * The upstream tag of a line, from `--upstream-*` or else from the ref's name.
 *
 * @throws {UsageError} when neither says
 */
function upstreamOf(ref: string, given: string | undefined, option: string): string {
  const tag = given ?? upstreamTagOf(ref);
  if (tag !== null) return tag;
  throw new UsageError(
    `cannot derive the upstream tag of ${ref} from its name ` +
      `(want release/vcluster/vX.Y.Z or vX.Y.Z.vcluster.N); pass ${option} <tag>`,
  );
}

/**
 * The ref to use for an upstream tag. A plain `vX.Y.Z` name, given or derived,
 * is looked up among upstream's own tags first (`refs/remotes/upstream/tags/`,
 * where `fetch-upstream-tags.sh` puts them), because the fork repository
 * carries tags with upstream names that point at fork commits. Any other name
 * (`refs/tags/v0.15.0`, a sha) is used as it is.
 */
async function baseRef(repo: string, tag: string): Promise<string> {
  if (parseVersion(tag) === null) return tag;
  const mirrored = `${UPSTREAM_TAGS}${tag}`;
  return (await listRefs(repo, mirrored)).includes(mirrored) ? mirrored : tag;
}

/**
 * The fork commits a release line carries on top of its upstream tag, with
 * their patch ids.
 *
 * @throws {NoVerdict} when the line does not contain its upstream tag
 */
async function lineCommits(repo: string, upstream: string, ref: string): Promise<LineCommit[]> {
  if (!await isAncestor(repo, upstream, ref)) {
    throw new NoVerdict(
      `${ref} does not contain ${upstream}: it was not cut from that upstream tag, ` +
        `so the commits it adds on top cannot be told apart`,
    );
  }
  const [commits, ids] = await Promise.all([
    listCommits(repo, upstream, ref),
    patchIds(repo, upstream, ref),
  ]);
  return commits
    .filter((c) => !isMerge(c) && checkSubject(c.subject).fork)
    .map((c) => ({
      sha: c.sha,
      shortSha: c.shortSha ?? c.sha.slice(0, 7),
      subject: c.subject,
      patchId: ids.get(c.sha) ?? null,
    }));
}

async function runReplay(args: string[], io: Io): Promise<number> {
  const { options, positional } = parseOptions(args, [
    "--previous",
    "--next",
    "--upstream-previous",
    "--upstream-next",
    "--repo",
  ]);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${positional[0]}`);
  const next = options.get("--next");
  if (next === undefined) throw new UsageError("missing --next <ref>");
  const repo = options.get("--repo") ?? Deno.cwd();
  const nextTag = upstreamOf(next, options.get("--upstream-next"), "--upstream-next");
  let previous = options.get("--previous");
  if (previous === undefined) {
    // Even with nothing to compare it against, a misspelt line must not pass.
    await resolveCommit(repo, next);
    const version = parseVersion(nextTag);
    if (version === null) {
      throw new UsageError(
        `cannot pick the previous release line: ${nextTag} is not a vX.Y.Z tag; pass --previous <ref>`,
      );
    }
    const refs = await listRefs(repo, "refs/heads/release/vcluster/", "refs/remotes/");
    const older = newestOlderLine(refs, version);
    if (older === null) {
      io.out(`OK: no release line older than ${nextTag}; nothing to replay into ${next}`);
      return 0;
    }
    previous = older;
  }
  const prevTag = upstreamOf(previous, options.get("--upstream-previous"), "--upstream-previous");
  const [upPrev, upNext] = await Promise.all([baseRef(repo, prevTag), baseRef(repo, nextTag)]);
  const [before, after] = await Promise.all([
    lineCommits(repo, upPrev, previous),
    lineCommits(repo, upNext, next),
  ]);
  const result = matchReplay(before, after);
  for (const line of formatReplay(result)) io.out(line);
  const lines = `${previous} (on ${upPrev}) and ${next} (on ${upNext})`;
  if (result.missing.length > 0) {
    io.err(
      `FAIL: ${result.missing.length} of ${plural(before.length, "fork commit")} ` +
        `missing from ${next}, comparing ${lines}`,
    );
    return 1;
  }
  const by = (kind: string) => result.matched.filter((m) => m.by === kind).length;
  io.out(
    `OK: all ${plural(before.length, "fork commit")} carried, comparing ${lines} ` +
      `(${by("subject and patch-id")} by subject and patch-id, ${by("subject")} by subject, ` +
      `${by("patch-id")} by patch-id; ${result.added.length} new)`,
  );
  return 0;
}

async function runTagOrigin(args: string[], io: Io): Promise<number> {
  const { options, positional } = parseOptions(args, ["--repo", "--upstream-ref"]);
  if (positional.length !== 1) throw new UsageError("tag-origin takes exactly one tag name");
  const tag = positional[0].replace(/^refs\/tags\//, "");
  if (parseVersion(tag) === null) {
    io.out(`OK: tag ${tag} is not a plain vX.Y.Z tag; tag-origin checks only those`);
    return 0;
  }
  const repo = options.get("--repo") ?? Deno.cwd();
  const commit = await resolveCommit(repo, `refs/tags/${tag}`);
  const given = options.get("--upstream-ref");
  const refs = given === undefined
    ? await listRefs(repo, UPSTREAM_REMOTE)
    : [await resolveCommit(repo, given)];
  if (refs.length === 0) {
    throw new NoVerdict(
      `no upstream refs (${UPSTREAM_REMOTE}*) in ${repo}; ` +
        `fetch the upstream remote or pass --upstream-ref <ref>`,
    );
  }
  const upstream = given ?? `${UPSTREAM_REMOTE}*`;
  const target = await describeCommit(repo, commit);
  if (await reachableFromAny(repo, commit, refs)) {
    io.out(`OK: tag ${tag} points at ${target}, which ${upstream} reaches`);
    return 0;
  }
  io.out(
    `tag ${tag} points at ${target}, which ${upstream} does not reach: ` +
      `a fork commit posing as an upstream release`,
  );
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
    if (sub === "replay") return await runReplay(rest, io);
    if (sub === "tag-origin") return await runTagOrigin(rest, io);
    throw new UsageError(sub === undefined ? "missing subcommand" : `unknown subcommand ${sub}`);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}; ${USAGE}`);
      return 2;
    }
    if (e instanceof GitError || e instanceof NoVerdict) {
      io.err(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
