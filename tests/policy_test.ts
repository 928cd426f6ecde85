// Tests for the fork policy (.github/policy): the pure commit and tag rules, and the
// `commits`/`tag` CLI run as a subprocess against throwaway git repositories.
// The replay and tag-origin tools are in policy_replay_test.ts.

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
  assertOk,
  assertUsage,
  assertViolations,
  explain,
  policy,
  withRepo,
} from "./helpers/policy.ts";

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
