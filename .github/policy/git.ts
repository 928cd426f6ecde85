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
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("git", { args, cwd: repo, stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new GitError(`cannot run git in ${repo}: ${e instanceof Error ? e.message : e}`);
  }
  if (!out.success) {
    const msg = new TextDecoder().decode(out.stderr).trim().split("\n")[0] ||
      `exit code ${out.code}`;
    throw new GitError(`git log ${from}..${to} failed in ${repo}: ${msg}`);
  }
  return parseGitLog(new TextDecoder().decode(out.stdout));
}
