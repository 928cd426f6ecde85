// Tests for the fork policy's replay tools (.github/policy/replay.ts): the pure
// matching rules, and `replay` / `tag-origin` run as a subprocess against
// throwaway git repositories.

import assert from "node:assert/strict";
import {
  compareVersions,
  type LineCommit,
  matchReplay,
  newestOlderLine,
  parseVersion,
  upstreamTagOf,
} from "../.github/policy/replay.ts";
import {
  assertOk,
  assertUsage,
  explain,
  policy,
  Repo,
  ROOT,
  type Run,
  withRepo,
} from "./helpers/policy.ts";

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
