/**
 * Reading commits and their changed files from a git repository.
 *
 * Needs `--allow-run=git` (and `--allow-read` for the working directory).
 *
 * @module
 */

import type { CommitInfo } from "./mod.ts";

const RECORD = "\x1e";
const FIELD = "\x1f";

/** `git log --format` producing `RS full-sha US short-sha US parents US subject`. */
export const LOG_FORMAT = "%x1e%H%x1f%h%x1f%P%x1f%s";

/** Raised when git cannot be run or rejects the request. */
export class GitError extends Error {
  /** Error name shown in stack traces. */
  override name = "GitError";
}

/**
 * Parse the output of `git log -z --name-only --format=LOG_FORMAT`.
 *
 * Each record is the header, a NUL, then (for commits that change files) a
 * newline followed by NUL-terminated paths.
 *
 * @param output raw stdout of git
 */
export function parseGitLog(output: string): CommitInfo[] {
  const commits: CommitInfo[] = [];
  for (const record of output.split(RECORD)) {
    if (record.trim() === "") continue;
    const [header, ...rest] = record.split("\0");
    const [sha, shortSha, parents, ...subjectParts] = header.split(FIELD);
    const files: string[] = [];
    rest.forEach((name, i) => {
      const path = i === 0 && name.startsWith("\n") ? name.slice(1) : name;
      if (path !== "") files.push(path);
    });
    commits.push({
      sha,
      shortSha,
      parents: parents === "" ? [] : parents.split(" "),
      subject: subjectParts.join(FIELD),
      files,
    });
  }
  return commits;
}

/**
 * Run git in `repo` and return its stdout.
 *
 * @param repo directory inside the repository
 * @param args git arguments
 * @param what short description of the request, for error messages
 * @param stdin bytes to feed to git, if any
 * @param okCodes exit codes that are answers rather than failures
 * @throws {GitError} when git is missing or exits with any other code
 */
async function git(
  repo: string,
  args: string[],
  what: string,
  { stdin, okCodes = [0] }: { stdin?: Uint8Array; okCodes?: number[] } = {},
): Promise<{ code: number; stdout: string }> {
  let out: Deno.CommandOutput;
  try {
    const child = new Deno.Command("git", {
      args,
      cwd: repo,
      stdin: stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // Collect the output while feeding stdin, so a full stdout pipe cannot stall git.
    const output = child.output();
    if (stdin) {
      const writer = child.stdin.getWriter();
      await writer.write(stdin);
      await writer.close();
    }
    out = await output;
  } catch (e) {
    throw new GitError(`cannot run git in ${repo}: ${e instanceof Error ? e.message : e}`);
  }
  if (!okCodes.includes(out.code)) {
    const msg = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ||
      `exit code ${out.code}`;
    throw new GitError(`${what} failed in ${repo}: ${msg}`);
  }
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

/**
 * List the commits of `from..to` (oldest first), merges included, each with
 * the paths it changes. Renames are reported as a deletion plus an addition,
 * so both the old and the new path count.
 *
 * @param repo directory inside the repository
 * @param from exclusive lower end of the range
 * @param to inclusive upper end of the range
 * @throws {GitError} when git is missing or fails (e.g. an unknown revision)
 */
export async function listCommits(repo: string, from: string, to: string): Promise<CommitInfo[]> {
  const args = [
    "-c",
    "core.quotePath=false",
    "-c",
    "log.showSignature=false",
    "log",
    "--reverse",
    "--no-renames",
    "--no-relative",
    "--name-only",
    "-z",
    `--format=${LOG_FORMAT}`,
    "--end-of-options",
    `${from}..${to}`,
    "--",
  ];
  const { stdout } = await git(repo, args, `git log ${from}..${to}`);
  return parseGitLog(stdout);
}

/**
 * The stable patch id (`git patch-id --stable`) of every non-merge commit in
 * `from..to` that changes something, keyed by full object name. Both sides of
 * a replay comparison are read with the same diff options, so the ids depend
 * on the patches alone, not on the user's diff configuration.
 *
 * @param repo directory inside the repository
 * @param from exclusive lower end of the range
 * @param to inclusive upper end of the range
 * @throws {GitError} when git fails
 */
export async function patchIds(
  repo: string,
  from: string,
  to: string,
): Promise<Map<string, string>> {
  const log = await git(repo, [
    "log",
    "--no-merges",
    "--patch",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--format=commit %H",
    "--end-of-options",
    `${from}..${to}`,
    "--",
  ], `git log --patch ${from}..${to}`);
  const { stdout } = await git(repo, ["patch-id", "--stable"], "git patch-id", {
    stdin: new TextEncoder().encode(log.stdout),
  });
  const ids = new Map<string, string>();
  for (const line of stdout.split("\n")) {
    const [patchId, sha] = line.split(" ");
    if (patchId && sha) ids.set(sha, patchId);
  }
  return ids;
}

/**
 * Full object name of the commit a revision names (a tag is peeled).
 *
 * @param repo directory inside the repository
 * @param rev any revision
 * @throws {GitError} when the revision does not name a commit
 */
export async function resolveCommit(repo: string, rev: string): Promise<string> {
  const { stdout } = await git(
    repo,
    ["rev-parse", "--verify", "--quiet", "--end-of-options", `${rev}^{commit}`],
    `git rev-parse ${rev}`,
  ).catch((e) => {
    throw e instanceof GitError ? new GitError(`unknown revision ${rev} in ${repo}`) : e;
  });
  return stdout.trim();
}

/**
 * Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor).
 *
 * @param repo directory inside the repository
 * @throws {GitError} when git fails
 */
export async function isAncestor(
  repo: string,
  ancestor: string,
  descendant: string,
): Promise<boolean> {
  const { code } = await git(
    repo,
    ["merge-base", "--is-ancestor", ancestor, descendant],
    `git merge-base --is-ancestor ${ancestor} ${descendant}`,
    { okCodes: [0, 1] },
  );
  return code === 0;
}

/**
 * Whether `commit` is reachable from at least one of `refs`.
 *
 * @param repo directory inside the repository
 * @param commit full object name
 * @param refs full object names or ref names, none starting with `-`
 * @throws {GitError} when git fails
 */
export async function reachableFromAny(
  repo: string,
  commit: string,
  refs: readonly string[],
): Promise<boolean> {
  // rev-list prints `commit` unless one of the excluded refs reaches it.
  const { stdout } = await git(
    repo,
    ["rev-list", "--max-count=1", "--end-of-options", commit, ...refs.map((r) => `^${r}`)],
    `git rev-list ${commit}`,
  );
  return stdout.trim() === "";
}

/**
 * Full names of the refs below a prefix, e.g. `refs/remotes/upstream/`.
 *
 * @param repo directory inside the repository
 * @param prefixes ref name prefixes ending in `/`
 * @throws {GitError} when git fails
 */
export async function listRefs(repo: string, ...prefixes: string[]): Promise<string[]> {
  const { stdout } = await git(
    repo,
    ["for-each-ref", "--format=%(refname)", ...prefixes],
    "git for-each-ref",
  );
  return stdout.split("\n").filter((l) => l !== "");
}

/**
 * One commit as `<short sha> <subject>`, for reports.
 *
 * @param repo directory inside the repository
 * @param commit full object name
 * @throws {GitError} when git fails
 */
export async function describeCommit(repo: string, commit: string): Promise<string> {
  const { stdout } = await git(
    repo,
    ["log", "-1", "--format=%h %s", "--end-of-options", commit, "--"],
    `git log ${commit}`,
  );
  return stdout.trim();
}
