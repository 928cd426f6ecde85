// Shared by the fork policy tests: the policy CLI run as a subprocess with exactly the
// permissions of `deno task policy`, and throwaway git repositories to run it in.

import assert from "node:assert/strict";

export const ROOT = new URL("../..", import.meta.url).pathname;
const CLI = new URL("../../.github/policy/cli.ts", import.meta.url).pathname;

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Run the policy CLI like `deno task policy` does (same permissions, no prompts). */
export async function policy(args: string[], cwd = ROOT): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-run=git", "--allow-read", CLI, ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return {
    code: out.code,
    stdout,
    stderr,
    lines: stdout.split("\n").filter((l) => l !== ""),
  };
}

export function explain(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** A throwaway repository in a temp dir, isolated from the user's git config. */
export class Repo {
  private constructor(readonly dir: string) {}

  static async create(): Promise<Repo> {
    const repo = new Repo(await Deno.makeTempDir({ prefix: "kine-policy-" }));
    await repo.git("init", "-q", "-b", "main");
    await repo.git("config", "user.name", "Policy Test");
    await repo.git("config", "user.email", "policy@example.invalid");
    await repo.git("config", "commit.gpgsign", "false");
    await repo.commit("Initial import", { "README.md": "kine\n", "go.mod": "module x\n" });
    return repo;
  }

  async git(...args: string[]): Promise<string> {
    const out = await new Deno.Command("git", {
      args,
      cwd: this.dir,
      env: { GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout).trim();
  }

  /** Write (or, with `null`, delete) files, commit everything, return the short sha. */
  async commit(subject: string, files: Record<string, string | null>): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      const full = `${this.dir}/${path}`;
      if (content === null) {
        await Deno.remove(full);
      } else {
        await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
        await Deno.writeTextFile(full, content);
      }
    }
    await this.git("add", "-A");
    await this.git("commit", "-q", "--allow-empty", "-m", subject);
    return await this.git("rev-parse", "--short", "HEAD");
  }

  async rename(subject: string, from: string, to: string): Promise<string> {
    await Deno.mkdir(`${this.dir}/${to.slice(0, to.lastIndexOf("/"))}`, { recursive: true });
    await this.git("mv", from, to);
    await this.git("commit", "-q", "-m", subject);
    return await this.git("rev-parse", "--short", "HEAD");
  }

  async cleanup(): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}

export async function withRepo(fn: (repo: Repo) => Promise<void>): Promise<void> {
  const repo = await Repo.create();
  try {
    await fn(repo);
  } finally {
    await repo.cleanup();
  }
}

/** Assert the exact set of violation lines: `<sha> <subject>: <reason containing text>`. */
export function assertViolations(
  r: Run,
  expected: Array<[sha: string, subject: string, text: string]>,
) {
  assert.equal(r.code, 1, explain(r));
  assert.equal(r.lines.length, expected.length, explain(r));
  expected.forEach(([sha, subject, text], i) => {
    const prefix = `${sha} ${subject}: `;
    assert.ok(
      r.lines[i].startsWith(prefix),
      `line ${i} should start with "${prefix}"\n${explain(r)}`,
    );
    assert.ok(r.lines[i].includes(text), `line ${i} should mention "${text}"\n${explain(r)}`);
  });
  assert.match(r.stderr, new RegExp(`FAIL: ${expected.length} violation`));
}

export function assertOk(r: Run, text: string | RegExp) {
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.lines.length, 1, `expected a one-line summary\n${explain(r)}`);
  assert.ok(r.lines[0].startsWith("OK: "), explain(r));
  if (typeof text === "string") assert.ok(r.lines[0].includes(text), explain(r));
  else assert.match(r.lines[0], text);
}

export function assertUsage(r: Run, text: string) {
  assert.equal(r.code, 2, explain(r));
  assert.equal(r.stdout, "", explain(r));
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `expected a one-line message\n${explain(r)}`);
  assert.ok(lines[0].includes(text), `stderr should mention "${text}"\n${explain(r)}`);
}
