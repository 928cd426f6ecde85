// Tests for the fork policy (.github/policy): the pure rules, and the CLI run
// as a subprocess with exactly the permissions of `deno task policy` against
// throwaway git repositories.

import assert from "node:assert/strict";
import {
  checkCommit,
  checkSubject,
  checkTag,
  classifyBase,
  isAllowlisted,
  parseSubject,
} from "../.github/policy/mod.ts";
import { parseGitLog } from "../.github/policy/git.ts";
import { parseRange } from "../.github/policy/cli.ts";
import {
  compareVersions,
  type LineCommit,
  matchReplay,
  newestOlderLine,
  parseVersion,
  upstreamTagOf,
} from "../.github/policy/replay.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLI = new URL("../.github/policy/cli.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Run the policy CLI like `deno task policy` does (same permissions, no prompts). */
async function policy(args: string[], cwd = ROOT): Promise<Run> {
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

function explain(r: Run): string {
  return `exit ${r.code}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`;
}

/** A throwaway repository in a temp dir, isolated from the user's git config. */
class Repo {
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

async function withRepo(fn: (repo: Repo) => Promise<void>): Promise<void> {
  const repo = await Repo.create();
  try {
    await fn(repo);
  } finally {
    await repo.cleanup();
  }
}

/** Assert the exact set of violation lines: `<sha> <subject>: <reason containing text>`. */
function assertViolations(r: Run, expected: Array<[sha: string, subject: string, text: string]>) {
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

function assertOk(r: Run, text: string | RegExp) {
  assert.equal(r.code, 0, explain(r));
  assert.equal(r.lines.length, 1, `expected a one-line summary\n${explain(r)}`);
  assert.ok(r.lines[0].startsWith("OK: "), explain(r));
  if (typeof text === "string") assert.ok(r.lines[0].includes(text), explain(r));
  else assert.match(r.lines[0], text);
}

function assertUsage(r: Run, text: string) {
  assert.equal(r.code, 2, explain(r));
  assert.equal(r.stdout, "", explain(r));
  const lines = r.stderr.split("\n").filter((l) => l !== "");
  assert.equal(lines.length, 1, `expected a one-line message\n${explain(r)}`);
  assert.ok(lines[0].includes(text), `stderr should mention "${text}"\n${explain(r)}`);
}

// ---------------------------------------------------------------- pure rules

Deno.test("parseSubject / checkSubject follow the conventional regex", () => {
  assert.deepEqual(parseSubject("feat(fork)!: add gssapi auth"), {
    type: "feat",
    scope: "fork",
    breaking: true,
    description: "add gssapi auth",
  });
  assert.deepEqual(parseSubject("chore: bump deps"), {
    type: "chore",
    scope: null,
    breaking: false,
    description: "bump deps",
  });
  assert.equal(parseSubject("fix(a/b_c-1): x")?.scope, "a/b_c-1");
  for (
    const bad of [
      "Feat: x",
      "feature: x",
      "feat(Fork): x",
      "feat(fork):x",
      "feat(fork): ",
      "feat (fork): x",
      "feat(): x",
      "Merge branch 'x'",
      "",
    ]
  ) {
    assert.equal(parseSubject(bad), null, bad);
    assert.equal(checkSubject(bad).conventional, false, bad);
  }
  for (const t of ["feat", "fix", "perf", "refactor"]) {
    const info = checkSubject(`${t}(fork): x`);
    assert.ok(info.fork && info.product, t);
  }
  for (const t of ["docs", "style", "test", "build", "ci", "chore", "revert"]) {
    const info = checkSubject(`${t}(fork): x`);
    assert.ok(info.fork && !info.product, t);
  }
  assert.equal(checkSubject("feat(forked): x").fork, false);
  assert.equal(checkSubject("feat(fork/ci): x").fork, false);
});

Deno.test("isAllowlisted matches the tooling allowlist only", () => {
  for (
    const ok of [
      ".github/workflows/release.yml",
      ".github/policy/mod.ts",
      "updatecli/updatecli.d/upstream-kine.yaml",
      "docs/release.md",
      "docs/systemd/kine.service",
      "README.md",
      "CONTRIBUTING.md",
      "Dockerfile.release",
      ".golangci.json",
    ]
  ) assert.ok(isAllowlisted(ok), ok);
  for (
    const bad of [
      "lib/mod.ts",
      "main.ts",
      "deno.json",
      "Dockerfile",
      "docs",
      "docsx/a.md",
      ".githubx/a",
      "sub/README.md",
      "README.md.orig",
      "tests/policy_test.ts",
    ]
  ) assert.ok(!isAllowlisted(bad), bad);
});

Deno.test("classifyBase", () => {
  assert.equal(classifyBase("main"), "mainline");
  assert.equal(classifyBase("master"), "mainline");
  assert.equal(classifyBase("refs/heads/main"), "mainline");
  assert.equal(classifyBase("release/vcluster/v0.16.3"), "release");
  assert.equal(classifyBase("release/vcluster/v1"), "release");
  for (const other of ["develop", "release/v0.16.3", "release/vcluster/0.16.3", "mainline"]) {
    assert.equal(classifyBase(other), "unchecked", other);
  }
});

Deno.test("checkCommit: rules per base, merges skipped", () => {
  const c = (subject: string, files: string[] = ["lib/x.ts"], parents = ["p"]) => ({
    sha: "0123456789abcdef",
    subject,
    files,
    parents,
  });
  assert.equal(checkCommit(c("feat(fork): x"), "main").length, 1);
  assert.equal(checkCommit(c("feat(fork): x"), "main")[0].sha, "0123456");
  assert.equal(checkCommit(c("ci(fork): x", [".github/a.yml"]), "master").length, 0);
  assert.equal(checkCommit(c("ci(fork): x", [".github/a.yml", "lib/a.ts"]), "main").length, 1);
  assert.equal(checkCommit(c("ci(fork): empty", []), "main").length, 0);
  assert.equal(checkCommit(c("whatever"), "main").length, 0);
  assert.equal(checkCommit(c("feat: x"), "main").length, 0);
  assert.equal(checkCommit(c("feat: x"), "release/vcluster/v0.16.3").length, 1);
  assert.equal(checkCommit(c("whatever"), "release/vcluster/v0.16.3").length, 1);
  assert.equal(checkCommit(c("feat(fork): x"), "release/vcluster/v0.16.3").length, 0);
  assert.equal(checkCommit(c("whatever"), "develop").length, 0);
  const merge = c("Merge branch 'x'", [], ["a", "b"]);
  assert.equal(checkCommit(merge, "release/vcluster/v0.16.3").length, 0);
  assert.equal(checkCommit({ ...merge, subject: "feat(fork): merged" }, "main").length, 0);
});

Deno.test("checkTag", () => {
  for (const ok of ["v0.16.2.vcluster.0", "v0.16.2.vcluster.1", "v10.200.3000.vcluster.42"]) {
    assert.deepEqual(checkTag(ok), { ok: true }, ok);
  }
  for (
    const bad of [
      "v0.16.2",
      "0.16.2.vcluster.0",
      "v0.16.2.vcluster",
      "v0.16.2.vcluster.",
      "v0.16.2-vcluster.0",
      "v0.16.2.vcluster.0-rc1",
      "v0.16.vcluster.0",
      "V0.16.2.vcluster.0",
      "v0.16.2.VCLUSTER.0",
      "v0.16.2.vcluster.0\n",
      "",
    ]
  ) {
    const r = checkTag(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
    if (!r.ok) assert.ok(r.reason.includes("vX.Y.Z.vcluster.N"));
  }
});

Deno.test("parseRange", () => {
  assert.deepEqual(parseRange("origin/main..abc123"), { from: "origin/main", to: "abc123" });
  assert.deepEqual(parseRange("HEAD~3..HEAD"), { from: "HEAD~3", to: "HEAD" });
  for (const bad of ["HEAD", "a...b", "..b", "a..", "a..b..c", "-x..HEAD", "a..-b", "a b..c"]) {
    assert.equal(parseRange(bad), null, bad);
  }
});

Deno.test("parseGitLog handles files, no files and odd names", () => {
  const raw = "\x1eaaaa\x1faa\x1fpppp\x1ffeat(fork): x\0\nlib/a b.ts\0docs/ü.md\0" +
    "\x1ebbbb\x1fbb\x1fpppp qqqq\x1fMerge branch 'x'\0" +
    "\x1ecccc\x1fcc\x1f\x1fInitial\0\nREADME.md\0";
  assert.deepEqual(parseGitLog(raw), [
    {
      sha: "aaaa",
      shortSha: "aa",
      parents: ["pppp"],
      subject: "feat(fork): x",
      files: ["lib/a b.ts", "docs/ü.md"],
    },
    {
      sha: "bbbb",
      shortSha: "bb",
      parents: ["pppp", "qqqq"],
      subject: "Merge branch 'x'",
      files: [],
    },
    { sha: "cccc", shortSha: "cc", parents: [], subject: "Initial", files: ["README.md"] },
  ]);
  assert.deepEqual(parseGitLog(""), []);
});

// ------------------------------------------------------------- CLI: tags

Deno.test("cli tag: good tags exit 0, bad tags exit 1 naming the scheme", async () => {
  const good = ["v0.16.2.vcluster.0", "v0.16.3.vcluster.12"];
  const bad = ["v0.16.2", "0.16.2.vcluster.0", "v0.16.2-vcluster.0", "v0.16.2.vcluster.0-rc1"];
  const runs = await Promise.all([...good, ...bad].map((t) => policy(["tag", t])));
  good.forEach((t, i) => assertOk(runs[i], t));
  bad.forEach((t, i) => {
    const r = runs[good.length + i];
    assert.equal(r.code, 1, explain(r));
    assert.ok(r.stdout.includes(t), explain(r));
    assert.ok(r.stdout.includes("vX.Y.Z.vcluster.N"), explain(r));
  });
});

// ------------------------------------------------------------- CLI: usage

Deno.test("cli: bad usage exits 2 with a one-line usage message", async () => {
  const cases: Array<[string[], string]> = [
    [[], "missing subcommand"],
    [["frobnicate"], "unknown subcommand frobnicate"],
    [["tag"], "usage:"],
    [["tag", "v0.1.2.vcluster.0", "extra"], "usage:"],
    [["commits", "HEAD~1..HEAD"], "missing --base"],
    [["commits", "--base"], "--base needs a value"],
    [["commits", "--base="], "usage:"],
    [["commits", "--base", "main"], "missing <from>..<to>"],
    [["commits", "--base", "main", "HEAD"], "malformed range"],
    [["commits", "--base", "main", "a...b"], "malformed range"],
    [["commits", "--base", "main", "..b"], "malformed range"],
    [["commits", "--base", "main", "a.."], "malformed range"],
    [["commits", "--base", "main", "a..b", "c..d"], "exactly one range"],
    [["commits", "--base", "main", "--frobnicate", "a..b"], "unknown option --frobnicate"],
  ];
  const runs = await Promise.all(cases.map(([args]) => policy(args)));
  cases.forEach(([, text], i) => {
    assertUsage(runs[i], text);
    assert.ok(runs[i].stderr.includes("usage:"), explain(runs[i]));
  });
});

Deno.test("cli commits: unknown revision or missing repo exits 2", async () => {
  await withRepo(async (repo) => {
    const [badRev, noRepo] = await Promise.all([
      policy(["commits", "--base", "main", "--repo", repo.dir, "nope..HEAD"]),
      policy(["commits", "--base", "main", "--repo", `${repo.dir}/missing`, "HEAD..HEAD"]),
    ]);
    assert.equal(badRev.code, 2, explain(badRev));
    assert.match(badRev.stderr, /^error: .*nope/, explain(badRev));
    assert.equal(noRepo.code, 2, explain(noRepo));
    assert.match(noRepo.stderr, /^error: /, explain(noRepo));
  });
});

// ---------------------------------------------------------- CLI: base main

Deno.test("cli commits --base main: product (fork) and off-allowlist tooling (fork) fail", async () => {
  await withRepo(async (repo) => {
    const base = await repo.git("rev-parse", "HEAD");
    // Allowed: upstream syncs (conventional or not), non-fork scopes, tooling in allowlist.
    await repo.commit("Update go.mod to go 1.23", { "go.mod": "module x\ngo 1.23\n" });
    await repo.commit("feat: upstream watch progress", { "lib/watch.ts": "1" });
    await repo.commit("fix(sqlite)!: upstream breaking fix", { "lib/sqlite.ts": "1" });
    await repo.commit("test(fork-ci): not the fork scope", { "lib/other.ts": "1" });
    await repo.commit("ci(FORK): not conventional, so not a fork commit", { "main.ts": "1" });
    await repo.commit("ci(fork): release infrastructure", {
      ".github/workflows/release.yml": "on: push\n",
      "updatecli/updatecli.d/upstream-kine.yaml": "name: x\n",
      "Dockerfile.release": "FROM scratch\n",
    });
    await repo.commit("docs(fork): fork docs", {
      "docs/systemd/kine.service": "[Unit]\n",
      "docs/with space ü.md": "x\n",
      "README.md": "kine fork\n",
      "CONTRIBUTING.md": "rules\n",
      ".golangci.json": "{}\n",
    });
    // Violations.
    const feat = await repo.commit("feat(fork): add gssapi auth", { "lib/gss.ts": "1" });
    const fixBang = await repo.commit("fix(fork)!: breaking fork fix", { "lib/gss.ts": "2" });
    const perf = await repo.commit("perf(fork): faster", { "lib/gss.ts": "3" });
    const refactor = await repo.commit("refactor(fork): tidy", { ".github/x.yml": "1" });
    const chore = await repo.commit("chore(fork): bump deno", {
      ".github/workflows/unit.yml": "x\n",
      "deno.json": "{}\n",
      "lib/a b.ts": "1",
    });
    const move = await repo.rename(
      "build(fork): move a product file into docs",
      "lib/sqlite.ts",
      "docs/sqlite.ts",
    );
    const style = await repo.commit("style(fork)!: delete a product file", {
      "lib/watch.ts": null,
    });

    const r = await policy(["commits", "--base", "main", "--repo", repo.dir, `${base}..HEAD`]);
    assertViolations(r, [
      [feat, "feat(fork): add gssapi auth", "product commit feat(fork)"],
      [fixBang, "fix(fork)!: breaking fork fix", "release/vcluster/v*"],
      [perf, "perf(fork): faster", "product commit perf(fork)"],
      [refactor, "refactor(fork): tidy", "product commit refactor(fork)"],
      [chore, "chore(fork): bump deno", "outside the tooling allowlist"],
      [move, "build(fork): move a product file into docs", "lib/sqlite.ts"],
      [style, "style(fork)!: delete a product file", "lib/watch.ts"],
    ]);
    // The off-allowlist files are named, the allowlisted one is not.
    assert.ok(r.lines[4].endsWith(": deno.json, lib/a b.ts"), explain(r));
    // A rename counts both paths: moving a file out of lib/ touches lib/.
    assert.ok(r.lines[5].endsWith(": lib/sqlite.ts"), explain(r));

    // `master` gets the same rules.
    const master = await policy([
      "commits",
      "--base",
      "master",
      "--repo",
      repo.dir,
      `${base}..HEAD`,
    ]);
    assert.equal(master.code, 1, explain(master));
    assert.equal(master.lines.length, 7, explain(master));

    // The clean prefix of the range passes, with a one-line summary.
    const clean = await policy([
      "commits",
      "--base=main",
      `--repo=${repo.dir}`,
      `${base}..${feat}~1`,
    ]);
    assertOk(clean, "7 commits");
  });
});

Deno.test("cli commits --base main: merge commits are skipped, default repo is cwd", async () => {
  await withRepo(async (repo) => {
    const base = await repo.git("rev-parse", "HEAD");
    await repo.git("checkout", "-q", "-b", "topic");
    await repo.commit("ci(fork): workflow", { ".github/workflows/a.yml": "x\n" });
    await repo.git("checkout", "-q", "main");
    await repo.commit("feat: upstream", { "lib/u.ts": "1" });
    await repo.git(
      "merge",
      "-q",
      "--no-ff",
      "--no-edit",
      "-m",
      "feat(fork): merge subject",
      "topic",
    );
    assert.equal((await repo.git("log", "-1", "--format=%P")).split(" ").length, 2);
    // No --repo: the repository is the working directory.
    const r = await policy(["commits", "--base", "main", `${base}..HEAD`], repo.dir);
    assertOk(r, "2 commits");
    assert.ok(r.lines[0].includes("1 merge commit skipped"), explain(r));
  });
});

// ------------------------------------------------------ CLI: release base

Deno.test("cli commits --base release/vcluster/v*: every commit conventional with fork scope", async () => {
  await withRepo(async (repo) => {
    await repo.git("tag", "v0.16.3");
    await repo.git("checkout", "-q", "-b", "release/vcluster/v0.16.3");
    // Allowed: fork scope, any type, breaking marker, any path.
    await repo.commit("feat(fork): add kerberos gssapi auth", { "lib/gss.ts": "1" });
    await repo.commit("fix(fork)!: close mysql connection", { "lib/mysql.ts": "1" });
    await repo.commit("ci(fork): apply release infrastructure", { "main.ts": "1" });
    await repo.git("checkout", "-q", "-b", "topic");
    await repo.commit("docs(fork): topic docs", { "docs/a.md": "1" });
    await repo.git("checkout", "-q", "release/vcluster/v0.16.3");
    await repo.commit("test(fork): more tests", { "tests/a.ts": "1" });
    await repo.git("merge", "-q", "--no-ff", "--no-edit", "topic");
    const okHead = await repo.git("rev-parse", "HEAD");
    // Violations.
    const noScope = await repo.commit("feat: no scope", { "lib/a.ts": "1" });
    const otherScope = await repo.commit("fix(kerberos): other scope", { "lib/a.ts": "2" });
    const plain = await repo.commit("Update README", { "README.md": "x\n" });
    const upper = await repo.commit("feat(Fork): uppercase scope", { "lib/a.ts": "3" });
    const noSpace = await repo.commit("chore(fork):no space", { "lib/a.ts": "4" });
    const allowlisted = await repo.commit("docs: allowlisted path is no excuse", {
      "docs/b.md": "1",
    });

    const clean = await policy([
      "commits",
      "--base",
      "release/vcluster/v0.16.3",
      "--repo",
      repo.dir,
      `v0.16.3..${okHead}`,
    ]);
    assertOk(clean, "5 commits");
    assert.ok(clean.lines[0].includes("1 merge commit skipped"), explain(clean));

    const r = await policy([
      "commits",
      "--base",
      "release/vcluster/v0.16.3",
      "--repo",
      repo.dir,
      "v0.16.3..HEAD",
    ]);
    assertViolations(r, [
      [noScope, "feat: no scope", "scope is missing"],
      [otherScope, "fix(kerberos): other scope", 'scope is "kerberos"'],
      [plain, "Update README", "not a Conventional Commit"],
      [upper, "feat(Fork): uppercase scope", "not a Conventional Commit"],
      [noSpace, "chore(fork):no space", "not a Conventional Commit"],
      [allowlisted, "docs: allowlisted path is no excuse", "fork scope"],
    ]);

    // The same commits into main: only non-fork commits, all allowed.
    const main = await policy(["commits", "--base", "main", "--repo", repo.dir, `${okHead}..HEAD`]);
    assertOk(main, "6 commits");
  });
});

// -------------------------------------------------------- CLI: other bases

Deno.test("cli commits: other bases have no rules", async () => {
  await withRepo(async (repo) => {
    const base = await repo.git("rev-parse", "HEAD");
    await repo.commit("feat(fork): product", { "lib/a.ts": "1" });
    await repo.commit("whatever", { "lib/b.ts": "1" });
    const bases = ["develop", "release/v0.16.3", "release/vcluster/0.16.3", "feature/main"];
    const runs = await Promise.all(
      bases.map((b) => policy(["commits", "--base", b, "--repo", repo.dir, `${base}..HEAD`])),
    );
    runs.forEach((r, i) => assertOk(r, `base ${bases[i]} has no fork policy rules`));
  });
});

// ------------------------------------------------------ replay: pure rules

Deno.test("upstreamTagOf reads the upstream tag from line branches and release tags", () => {
  for (
    const [ref, tag] of [
      ["release/vcluster/v0.16.3", "v0.16.3"],
      ["refs/heads/release/vcluster/v0.16.3", "v0.16.3"],
      ["origin/release/vcluster/v10.2.30", "v10.2.30"],
      ["refs/remotes/origin/release/vcluster/v0.16.3", "v0.16.3"],
      ["v0.16.3.vcluster.0", "v0.16.3"],
      ["refs/tags/v0.16.3.vcluster.12", "v0.16.3"],
    ]
  ) assert.equal(upstreamTagOf(ref), tag, ref);
  for (
    const ref of [
      "HEAD",
      "main",
      "v0.16.3",
      "release/vcluster/v0.16",
      "release/vcluster/v0.16.3-rc1",
      "release/vcluster/0.16.3",
      "myrelease/vcluster/v0.16.3",
      "v0.16.3.vcluster.",
      "v0.16.3.vcluster.0/x",
    ]
  ) assert.equal(upstreamTagOf(ref), null, ref);
});

Deno.test("parseVersion / compareVersions order versions numerically", () => {
  assert.deepEqual(parseVersion("v0.16.3"), [0, 16, 3]);
  for (const bad of ["0.16.3", "v0.16", "v0.16.3.vcluster.0", "v0.16.3-rc1", "V0.16.3"]) {
    assert.equal(parseVersion(bad), null, bad);
  }
  assert.ok(compareVersions([0, 9, 0], [0, 10, 0]) < 0);
  assert.ok(compareVersions([1, 0, 0], [0, 99, 99]) > 0);
  assert.ok(compareVersions([0, 16, 10], [0, 16, 9]) > 0);
  assert.equal(compareVersions([0, 16, 3], [0, 16, 3]), 0);
});

Deno.test("newestOlderLine picks the newest older line, local before remote", () => {
  const refs = [
    "refs/remotes/origin/release/vcluster/v0.9.0",
    "refs/remotes/origin/release/vcluster/v0.10.0",
    "refs/remotes/upstream/release/vcluster/v0.15.2",
    "refs/remotes/origin/release/vcluster/v0.15.2",
    "refs/remotes/origin/release/vcluster/v0.16.3",
    "refs/remotes/origin/release/vcluster/v0.17.0",
    "refs/remotes/origin/release/vcluster/v0.16.0-rc1",
    "refs/remotes/origin/feature/release/vcluster/v0.16.1",
    "refs/tags/release/vcluster/v0.16.2",
    "refs/heads/main",
  ];
  assert.equal(
    newestOlderLine(refs, [0, 16, 3]),
    "refs/remotes/origin/release/vcluster/v0.15.2",
  );
  assert.equal(
    newestOlderLine([...refs, "refs/heads/release/vcluster/v0.15.2"], [0, 16, 3]),
    "refs/heads/release/vcluster/v0.15.2",
  );
  assert.equal(newestOlderLine(refs, [0, 11, 0]), "refs/remotes/origin/release/vcluster/v0.10.0");
  assert.equal(newestOlderLine(refs, [0, 9, 0]), null);
  assert.equal(newestOlderLine([], [1, 0, 0]), null);
});

Deno.test("matchReplay: subject or patch, strongest pairs first, one partner each", () => {
  const c = (sha: string, subject: string, patchId: string | null): LineCommit => ({
    sha,
    shortSha: sha,
    subject,
    patchId,
  });
  const previous = [
    c("p1", "feat(fork): a", "A"),
    c("p2", "feat(fork): b", "B"),
    c("p3", "chore(fork): bump", "C1"),
    c("p4", "chore(fork): bump", "C2"),
    c("p5", "docs(fork): empty", null),
    c("p6", "fix(fork): gone", "G"),
  ];
  const next = [
    c("n0", "feat(fork): new", "N"),
    c("n4", "chore(fork): bump", "C2"),
    c("n3", "chore(fork): bump", "C1"),
    c("n2", "feat(fork): b reworded", "B"),
    c("n1", "feat(fork): a", "A-changed"),
    c("n5", "docs(fork): empty", null),
    c("n9", "docs(fork): also empty", null),
  ];
  const r = matchReplay(previous, next);
  assert.deepEqual(
    r.matched.map((m) => [m.previous.sha, m.next.sha, m.by]),
    [
      ["p1", "n1", "subject"],
      ["p2", "n2", "patch-id"],
      // Same subject twice: each pairs with its own patch, not the first subject hit.
      ["p3", "n3", "subject and patch-id"],
      ["p4", "n4", "subject and patch-id"],
      // Empty diffs have no patch id and only ever match by subject.
      ["p5", "n5", "subject"],
    ],
  );
  assert.deepEqual(r.missing.map((m) => m.sha), ["p6"]);
  assert.deepEqual(r.added.map((m) => m.sha), ["n0", "n9"]);
  assert.deepEqual(matchReplay([], next).added.length, next.length);
  assert.deepEqual(matchReplay(previous, []).missing.length, previous.length);
});

// ------------------------------------------------------------ CLI: replay

const RDS = "feat(fork): add aws rds iam authentication";
const GSS = "feat(fork): add kerberos gssapi auth for postgresql";
const LOCK = "fix(fork): bound lock_timeout on postgresql";

/**
 * Upstream history with tags v0.15.0 and v0.16.0, the previous line
 * release/vcluster/v0.15.0 with three fork commits, and next lines on v0.16.0.
 * Returns the short sha of every commit the assertions name.
 */
async function releaseLines(repo: Repo): Promise<Record<string, string>> {
  const sha: Record<string, string> = {};
  const head = () => repo.git("rev-parse", "--short", "HEAD");
  const pick = async (...shas: string[]) => {
    for (const s of shas) await repo.git("cherry-pick", "--allow-empty", s);
    return await head();
  };
  const branch = (name: string) => repo.git("checkout", "-q", "-b", name, "v0.16.0");
  await repo.commit("Add postgres driver", { "pkg/pg.go": "connect\n" });
  await repo.git("tag", "v0.15.0");
  await repo.commit("Bump go to 1.23", { "go.mod": "module x\ngo 1.23\n" });
  await repo.commit("Fix watch resume", { "pkg/watch.go": "resume\n" });
  await repo.git("tag", "v0.16.0");

  await repo.git("checkout", "-q", "-b", "release/vcluster/v0.15.0", "v0.15.0");
  sha.rds = await repo.commit(RDS, { "pkg/rds.go": "iam token\n" });
  sha.gss = await repo.commit(GSS, { "pkg/gss.go": "gssapi\n" });
  sha.lock = await repo.commit(LOCK, { "pkg/pg.go": "connect\nlock_timeout 10s\n" });

  await branch("next-all");
  sha.allLock = await pick(sha.rds, sha.gss, sha.lock);
  await repo.git("tag", "v0.16.0.vcluster.0");
  await repo.git("checkout", "-q", "-b", "release/vcluster/v0.16.0");
  sha.extra = await repo.commit("feat(fork): tune nats jetstream", { "pkg/nats.go": "tuned\n" });

  await branch("next-reworded");
  sha.rewordedLock = await pick(sha.rds, sha.gss, sha.lock);
  await repo.git(
    "commit",
    "-q",
    "--amend",
    "-m",
    "fix(fork): bound postgresql lock_timeout to 10s",
  );
  sha.rewordedLock = await head();

  await branch("next-changed");
  await pick(sha.rds, sha.gss);
  sha.changedLock = await repo.commit(LOCK, {
    "pkg/pg.go": "connect\nlock_timeout 10s\nddl lock_timeout 0\n",
  });

  await branch("next-dropped");
  await pick(sha.rds, sha.lock);

  // Reworded and changed: neither subject nor patch id is left to find it by.
  await branch("next-lost");
  await pick(sha.rds, sha.gss);
  await repo.commit("fix(fork): bound postgresql lock waits", {
    "pkg/pg.go": "connect\nlock 5s\n",
  });
  sha.lostLock = await head();
  return sha;
}

function replayLines(r: Run, prefix: string): string[] {
  return r.lines.filter((l) => l.startsWith(prefix));
}

Deno.test("cli replay: next lines that carry, reword, change, drop and add fork commits", async () => {
  await withRepo(async (repo) => {
    const sha = await releaseLines(repo);
    const prev = ["--previous", "release/vcluster/v0.15.0"];
    const on16 = ["--upstream-next", "v0.16.0", "--repo", repo.dir];
    const [all, extra, reworded, changed, dropped, lost] = await Promise.all([
      policy(["replay", ...prev, "--next", "next-all", ...on16]),
      // Bases derived from both names, previous line found by itself, cwd as repo.
      policy(["replay", "--next", "release/vcluster/v0.16.0"], repo.dir),
      policy(["replay", ...prev, "--next", "next-reworded", ...on16]),
      policy(["replay", ...prev, "--next", "next-changed", ...on16]),
      policy(["replay", ...prev, "--next", "next-dropped", ...on16]),
      policy(["replay", ...prev, "--next", "next-lost", ...on16]),
    ]);

    assert.equal(all.code, 0, explain(all));
    assert.deepEqual(replayLines(all, "matched").map((l) => l.replace(/-> \w+ /, "-> * ")), [
      `matched (subject and patch-id): ${sha.rds} -> * ${RDS}`,
      `matched (subject and patch-id): ${sha.gss} -> * ${GSS}`,
      `matched (subject and patch-id): ${sha.lock} -> * ${LOCK}`,
    ]);
    assert.ok(all.lines.at(-1)!.startsWith("OK: all 3 fork commits carried"), explain(all));
    assert.ok(all.lines.at(-1)!.includes("release/vcluster/v0.15.0 (on v0.15.0)"), explain(all));
    assert.ok(all.lines.at(-1)!.includes("next-all (on v0.16.0)"), explain(all));
    assert.ok(all.lines.at(-1)!.includes("3 by subject and patch-id, 0 by subject"), explain(all));
    assert.equal(all.lines.length, 4, explain(all));

    assert.equal(extra.code, 0, explain(extra));
    assert.deepEqual(replayLines(extra, "new: "), [
      `new: ${sha.extra} feat(fork): tune nats jetstream`,
    ]);
    assert.equal(replayLines(extra, "matched (subject and patch-id)").length, 3, explain(extra));
    assert.match(
      extra.lines.at(-1)!,
      /^OK: .*refs\/heads\/release\/vcluster\/v0\.15\.0 \(on v0\.15\.0\)/,
    );
    assert.match(extra.lines.at(-1)!, /release\/vcluster\/v0\.16\.0 \(on v0\.16\.0\).*; 1 new\)$/);

    assert.equal(reworded.code, 0, explain(reworded));
    assert.deepEqual(replayLines(reworded, "matched (patch-id)"), [
      `matched (patch-id): ${sha.lock} -> ${sha.rewordedLock} ` +
      `fix(fork): bound postgresql lock_timeout to 10s (was: ${LOCK})`,
    ]);
    assert.deepEqual(replayLines(reworded, "new: "), []);

    assert.equal(changed.code, 0, explain(changed));
    assert.deepEqual(replayLines(changed, "matched (subject)"), [
      `matched (subject): ${sha.lock} -> ${sha.changedLock} ${LOCK}`,
    ]);
    assert.match(changed.lines.at(-1)!, /2 by subject and patch-id, 1 by subject, 0 by patch-id/);

    assert.equal(dropped.code, 1, explain(dropped));
    assert.deepEqual(replayLines(dropped, "missing: "), [`missing: ${sha.gss} ${GSS}`]);
    assert.equal(replayLines(dropped, "matched").length, 2, explain(dropped));
    assert.match(dropped.stderr, /^FAIL: 1 of 3 fork commits missing from next-dropped/);

    assert.equal(lost.code, 1, explain(lost));
    assert.deepEqual(replayLines(lost, "missing: "), [`missing: ${sha.lock} ${LOCK}`]);
    assert.deepEqual(replayLines(lost, "new: "), [
      `new: ${sha.lostLock} fix(fork): bound postgresql lock waits`,
    ]);
  });
});

Deno.test("cli replay: release tags, the oldest line, and refs git cannot use", async () => {
  await withRepo(async (repo) => {
    await releaseLines(repo);
    const [tag, oldest, unknownOldest, unknown, notCut] = await Promise.all([
      policy(["replay", "--next", "v0.16.0.vcluster.0", "--repo", repo.dir]),
      policy(["replay", "--next", "release/vcluster/v0.15.0", "--repo", repo.dir]),
      policy(["replay", "--next", "release/vcluster/v0.14.0", "--repo", repo.dir]),
      policy([
        "replay",
        "--next",
        "release/vcluster/v0.16.9",
        "--previous=release/vcluster/v0.15.0",
        `--repo=${repo.dir}`,
      ]),
      policy([
        "replay",
        "--previous",
        "next-all",
        "--upstream-previous",
        "v0.16.0",
        "--next",
        "release/vcluster/v0.15.0",
        "--upstream-next",
        "v0.16.0",
        "--repo",
        repo.dir,
      ]),
    ]);
    assert.equal(tag.code, 0, explain(tag));
    assert.match(tag.lines.at(-1)!, /^OK: all 3 fork commits carried/);
    assert.match(tag.lines.at(-1)!, /v0\.16\.0\.vcluster\.0 \(on v0\.16\.0\)/);
    assert.equal(oldest.code, 0, explain(oldest));
    assert.deepEqual(oldest.lines, [
      "OK: no release line older than v0.15.0; nothing to replay into release/vcluster/v0.15.0",
    ]);
    assert.equal(unknownOldest.code, 2, explain(unknownOldest));
    assert.match(unknownOldest.stderr, /^error: unknown revision release\/vcluster\/v0\.14\.0/);
    assert.equal(unknown.code, 2, explain(unknown));
    assert.match(unknown.stderr, /^error: .*v0\.16\.9/, explain(unknown));
    assert.equal(notCut.code, 2, explain(notCut));
    assert.match(notCut.stderr, /^error: release\/vcluster\/v0\.15\.0 does not contain v0\.16\.0/);
  });
});

Deno.test("cli replay: plain base tags resolve to upstream's tags over fork tags with upstream names", async () => {
  await withRepo(async (repo) => {
    const sha = await releaseLines(repo);
    // The repository is its own upstream here: the script mirrors the genuine tags.
    const fetch = await new Deno.Command("bash", {
      args: [`${ROOT}.github/policy/fetch-upstream-tags.sh`],
      cwd: repo.dir,
      env: { UPSTREAM_URL: repo.dir, GIT_CONFIG_NOSYSTEM: "1", GIT_CONFIG_GLOBAL: "/dev/null" },
      stderr: "piped",
    }).output();
    assert.ok(fetch.success, new TextDecoder().decode(fetch.stderr));
    // A fork release once tagged with the upstream name, on the previous line.
    await repo.git("tag", "-f", "v0.15.0", sha.gss);
    const args = ["--next", "next-dropped", "--upstream-next", "v0.16.0", "--repo", repo.dir];
    const prev = ["--previous", "release/vcluster/v0.15.0"];
    const [derived, given, literal] = await Promise.all([
      policy(["replay", ...prev, ...args]),
      policy(["replay", ...prev, "--upstream-previous", "v0.15.0", ...args]),
      policy(["replay", ...prev, "--upstream-previous", "refs/tags/v0.15.0", ...args]),
    ]);
    for (const r of [derived, given]) {
      assert.equal(r.code, 1, explain(r));
      assert.deepEqual(replayLines(r, "missing: "), [`missing: ${sha.gss} ${GSS}`]);
      assert.match(
        r.stderr,
        /release\/vcluster\/v0\.15\.0 \(on refs\/remotes\/upstream\/tags\/v0\.15\.0\)/,
      );
    }
    // Named as the fork's own tag, the posing tag hides the dropped commit from the inventory.
    assert.equal(literal.code, 0, explain(literal));
    assert.match(literal.lines.at(-1)!, /^OK: all 1 fork commit carried/);
  });
});

Deno.test("cli replay / tag-origin: bad usage exits 2 with a one-line usage message", async () => {
  const cases: Array<[string[], string]> = [
    [["replay"], "missing --next"],
    [["replay", "--next"], "--next needs a value"],
    [["replay", "--next", "--previous", "x"], "looks like an option"],
    [["replay", "--next", "HEAD"], "pass --upstream-next"],
    [["replay", "--next", "release/vcluster/v0.16.0", "--previous", "HEAD"], "--upstream-previous"],
    [["replay", "--next", "HEAD", "--upstream-next", "abc123"], "pass --previous"],
    [["replay", "--next", "release/vcluster/v0.16.0", "extra"], "unexpected argument extra"],
    [["replay", "--next", "release/vcluster/v0.16.0", "--base", "x"], "unknown option --base"],
    [["tag-origin"], "exactly one tag"],
    [["tag-origin", "v0.15.0", "v0.16.0"], "exactly one tag"],
    [["tag-origin", "v0.15.0", "--upstream-ref"], "--upstream-ref needs a value"],
  ];
  const runs = await Promise.all(cases.map(([args]) => policy(args)));
  cases.forEach(([, text], i) => assertUsage(runs[i], text));
});

// -------------------------------------------------------- CLI: tag-origin

Deno.test("cli tag-origin: plain version tags must point at upstream commits", async () => {
  const upstream = await Repo.create();
  try {
    await withRepo(async (fork) => {
      await upstream.commit("Add postgres driver", { "pkg/pg.go": "connect\n" });
      await upstream.git("tag", "v0.15.0");
      await upstream.commit("Fix watch resume", { "pkg/watch.go": "resume\n" });
      await upstream.git("tag", "-a", "-m", "v0.16.0", "v0.16.0");
      // The fork mirrors upstream's tags, then tags a fork commit like an upstream release.
      await fork.git("fetch", "-q", upstream.dir, "refs/tags/*:refs/tags/*");
      await fork.git("checkout", "-q", "-b", "release/vcluster/v0.15.0", "v0.15.0");
      const posing = await fork.commit(RDS, { "pkg/rds.go": "iam\n" });
      await fork.git("tag", "v0.15.1");
      await fork.git("tag", "v0.15.1.vcluster.0");
      const origin = (tag: string, ...more: string[]) =>
        policy(["tag-origin", tag, "--repo", fork.dir, ...more]);

      const before = await origin("v0.15.0");
      assert.equal(before.code, 2, explain(before));
      assert.match(before.stderr, /^error: no upstream refs \(refs\/remotes\/upstream\/\*\)/);

      // What fetch-upstream-tags.sh does: upstream's tags as refs/remotes/upstream/tags/*.
      await fork.git("remote", "add", "upstream", upstream.dir);
      await fork.git(
        "fetch",
        "-q",
        "--no-tags",
        "upstream",
        "+refs/tags/*:refs/remotes/upstream/tags/*",
      );
      const [genuine, annotated, fake, releaseTag, pinnedOk, pinnedBad, unknown] = await Promise
        .all([
          origin("v0.15.0"),
          origin("refs/tags/v0.16.0"),
          origin("v0.15.1"),
          origin("v0.15.1.vcluster.0"),
          origin("v0.15.0", "--upstream-ref", "upstream/tags/v0.16.0"),
          origin("v0.16.0", "--upstream-ref=v0.15.0"),
          origin("v9.9.9"),
        ]);
      assertOk(
        genuine,
        /^OK: tag v0\.15\.0 points at \w+ Add postgres driver, which refs\/remotes\/upstream\/\* reaches$/,
      );
      assertOk(annotated, "tag v0.16.0 points at");
      assert.equal(fake.code, 1, explain(fake));
      assert.deepEqual(fake.lines, [
        `tag v0.15.1 points at ${posing} ${RDS}, which refs/remotes/upstream/* does not reach: ` +
        "a fork commit posing as an upstream release",
      ]);
      assertOk(releaseTag, "not a plain vX.Y.Z tag");
      assertOk(pinnedOk, "which upstream/tags/v0.16.0 reaches");
      assert.equal(pinnedBad.code, 1, explain(pinnedBad));
      assert.match(pinnedBad.stdout, /which v0\.15\.0 does not reach/);
      assert.equal(unknown.code, 2, explain(unknown));
      assert.match(unknown.stderr, /^error: unknown revision refs\/tags\/v9\.9\.9/);
    });
  } finally {
    await upstream.cleanup();
  }
});
