// Structural tests for the GitHub workflows and the updatecli manifests
// (Dockerfile.release and action pinning: packaging_test.ts): names, triggers, jobs, artifact names, and the exact
// arguments the policy workflows pass to `deno task policy`. Where a step is
// plain shell (version resolution, checksums, upload globs) it is executed.

import assert from "node:assert/strict";
import { checkCommit } from "../.github/policy/mod.ts";

import {
  command,
  denoVersion,
  load,
  ROOT,
  sh,
  type Step,
  step,
  steps,
  stubbedCalls,
  TARGETS,
  withMatrix,
  workflow,
  WORKFLOWS,
  type Yaml,
} from "./helpers/workflows.ts";

// ------------------------------------------------------------------ all

Deno.test("every workflow parses and has a name, triggers and runnable jobs", async () => {
  const files = [...Deno.readDirSync(WORKFLOWS)].map((e) => e.name).sort();
  for (
    const f of [
      "fork-policy.yml",
      "release.yaml",
      "replay-policy.yml",
      "release.yml",
      "unit.yml",
      "updatecli.yml",
      "version-policy.yaml",
    ]
  ) {
    assert.ok(files.includes(f), `missing workflow ${f}`);
  }
  const pinned = await denoVersion();
  for (const f of files.filter((f) => /\.ya?ml$/.test(f))) {
    const wf = await workflow(f);
    assert.equal(typeof wf.name, "string", `${f}: name`);
    assert.ok(wf.on && typeof wf.on === "object", `${f}: on`);
    assert.ok(Object.keys(wf.jobs ?? {}).length > 0, `${f}: jobs`);
    for (const [id, job] of Object.entries(wf.jobs as Record<string, Yaml>)) {
      assert.equal(typeof job["runs-on"], "string", `${f}: ${id} runs-on`);
      assert.ok(Array.isArray(job.steps) && job.steps.length > 0, `${f}: ${id} steps`);
      for (const s of job.steps as Step[]) {
        assert.ok(s.run || s.uses, `${f}: ${id}: a step needs run or uses`);
      }
    }
    // Deno is installed from npm at the version updatecli tracks.
    const runs = steps(wf).map((s) => s.run ?? "").join("\n");
    for (const m of runs.matchAll(/deno@(\S+)/g)) {
      assert.equal(m[1], pinned, `${f} pins deno@${m[1]}, updatecli tracks ${pinned}`);
    }
    if (/deno task /.test(runs)) {
      assert.ok(runs.includes(`npm install -g deno@${pinned}`), `${f} must install Deno`);
      const idx = steps(wf).findIndex((s) => /deno task /.test(s.run ?? ""));
      const install = steps(wf).findIndex((s) => /npm install -g deno@/.test(s.run ?? ""));
      assert.ok(install >= 0 && install < idx, `${f}: Deno installed before use`);
    }
  }
});

// ----------------------------------------------------------- fork policy

Deno.test("fork-policy.yml checks PR commits against the base with full history", async () => {
  const wf = await workflow("fork-policy.yml");
  assert.equal(wf.name, "Fork policy");
  assert.deepEqual(Object.keys(wf.on), ["pull_request"]);
  assert.deepEqual(wf.on.pull_request.types, ["opened", "synchronize", "reopened", "edited"]);
  assert.equal(step(wf, /^actions\/checkout@/).with?.["fetch-depth"], 0);
  assert.equal(
    command(step(wf, /deno task policy/)),
    "deno task policy commits --base ${{ github.base_ref }} " +
      "origin/${{ github.base_ref }}..${{ github.event.pull_request.head.sha }}",
  );
});

// -------------------------------------------------------- version policy

Deno.test("version-policy.yaml checks pushed v* tags and does not gate the image build", async () => {
  const wf = await workflow("version-policy.yaml");
  assert.equal(wf.name, "Version policy");
  assert.deepEqual(wf.on, { push: { tags: ["v*"] } });
  assert.equal(
    command(step(wf, /deno task policy tag "/)),
    "deno task policy tag ${{ github.ref_name }}",
  );

  // Not gating: the image build neither waits for this workflow nor is
  // triggered by it, and this workflow runs nothing but the checks.
  const build = await workflow("release.yaml");
  assert.equal(build.on.workflow_run, undefined);
  assert.ok(!JSON.stringify(build).includes("version-policy"));
  for (const job of Object.values(wf.jobs as Record<string, Yaml>)) {
    assert.equal(job.needs, undefined);
    assert.ok(!(job.steps as Step[]).some((s) => /docker|gh release/.test(s.run ?? s.uses ?? "")));
  }
});

Deno.test("version-policy.yaml checks that plain version tags point at upstream commits", async () => {
  const wf = await workflow("version-policy.yaml");
  const jobs = Object.values(wf.jobs as Record<string, Yaml>);
  const job = jobs.find((j) => (j.steps as Step[]).some((s) => /tag-origin/.test(s.run ?? "")));
  assert.ok(job, "a tag-origin job");
  // Release tags are skipped; plain vX.Y.Z tags (and other names) are checked.
  assert.equal(job.if, "${{ !contains(github.ref_name, '.vcluster.') }}");
  const all = job.steps as Step[];
  const checkout = all.find((s) => s.uses?.startsWith("actions/checkout@"));
  assert.equal(checkout?.with?.["fetch-depth"], 0);
  const fetch = all.findIndex((s) => s.run === "bash .github/policy/fetch-upstream-tags.sh");
  const check = all.findIndex((s) => /deno task policy tag-origin/.test(s.run ?? ""));
  assert.ok(fetch >= 0 && fetch < check, "upstream tags fetched before the check");
  assert.equal(command(all[check]), "deno task policy tag-origin ${{ github.ref_name }}");
});

// --------------------------------------------------------- replay policy

Deno.test("replay-policy.yml checks release lines on PRs, pushes and release tags", async () => {
  const wf = await workflow("replay-policy.yml");
  assert.equal(wf.name, "Replay policy");
  assert.deepEqual(wf.on, {
    pull_request: {
      branches: ["release/vcluster/v*"],
      types: ["opened", "synchronize", "reopened", "edited"],
    },
    push: { branches: ["release/vcluster/v*"], tags: ["v*.vcluster.*"] },
  });
  assert.deepEqual(wf.permissions, { contents: "read" });
  assert.equal(step(wf, /^actions\/checkout@/).with?.["fetch-depth"], 0);
  const all = steps(wf);
  const fetch = all.indexOf(step(wf, /fetch-upstream-tags\.sh/));
  const pr = all.find((s) => s.if === "github.event_name == 'pull_request'");
  const push = all.find((s) => s.if === "github.event_name == 'push'");
  assert.ok(pr && push, "one check per event");
  assert.ok(fetch < all.indexOf(pr) && fetch < all.indexOf(push));

  // A pull request: its merge commit, on the upstream tag its base line names.
  assert.deepEqual(
    await stubbedCalls(pr, { BASE_REF: "release/vcluster/v0.16.3" }),
    [["deno", "task", "policy", "replay", "--next", "HEAD", "--upstream-next", "v0.16.3"]],
  );
  assert.equal(pr.env?.BASE_REF, "${{ github.base_ref }}");
  // A push: the pushed ref, whose name gives the line.
  assert.equal(push.env?.REF, "${{ github.ref }}");
  for (const ref of ["refs/heads/release/vcluster/v0.16.3", "refs/tags/v0.16.3.vcluster.1"]) {
    assert.deepEqual(await stubbedCalls(push, { REF: ref }), [
      ["deno", "task", "policy", "replay", "--next", ref],
    ]);
  }
});

Deno.test("release.yaml and release.yml refuse a line's first tag that fails the replay check", async () => {
  for (
    const [file, tag] of [
      ["release.yaml", "${{ steps.version.outputs.tag }}"],
      ["release.yml", "${{ github.event.release.tag_name }}"],
    ]
  ) {
    const wf = await workflow(file);
    const all = steps(wf);
    const gate = step(wf, /deno task policy replay/);
    assert.equal(gate.if, `endsWith(${tag.slice(4, -3)}, '.vcluster.0')`, file);
    assert.equal(gate.env?.TAG, tag, file);
    assert.equal(step(wf, /^actions\/checkout@/).with?.["fetch-depth"], 0, file);
    assert.deepEqual(await stubbedCalls(gate, { TAG: "v0.16.3.vcluster.0" }), [
      ["bash", ".github/policy/fetch-upstream-tags.sh"],
      ["deno", "task", "policy", "replay", "--next", "refs/tags/v0.16.3.vcluster.0"],
    ], file);
    // Nothing is built or published before the gate.
    const first = all.findIndex((s) =>
      /deno task compile|fetch-binaries|docker|gh release/.test(s.run ?? s.uses ?? "")
    );
    assert.ok(all.indexOf(gate) < first, `${file}: the gate runs before any build`);
  }
});

// ------------------------------------------------------------ Kine build

Deno.test("release.yaml (Kine build) pushes a multi-arch image with SBOM and provenance, then attests it", async () => {
  const wf = await workflow("release.yaml");
  assert.equal(wf.name, "Kine build");
  assert.deepEqual(wf.on.push, { tags: ["v*"] });
  assert.ok(wf.on.workflow_dispatch.inputs.kine_version, "workflow_dispatch input kine_version");
  assert.equal(wf.on.workflow_dispatch.inputs.kine_version.required, true);
  assert.equal(wf.permissions["id-token"], "write");
  assert.equal(wf.permissions.attestations, "write");
  assert.equal(wf.permissions.packages, "write");
  assert.equal(wf.env.IMAGE, "ghcr.io/loft-sh/kine");

  // The binaries Dockerfile.release copies are the release's, fetched and verified, not rebuilt.
  assert.ok(!steps(wf).some((s) => /deno task compile/.test(s.run ?? "")), "no second build");
  const fetch = step(wf, /fetch-binaries\.sh/);
  assert.equal(
    command(fetch),
    "bash .github/release/fetch-binaries.sh ${{ steps.version.outputs.tag }} dist",
  );
  assert.equal(fetch.env?.GH_TOKEN, "${{ github.token }}");

  const build = step(wf, /^docker\/build-push-action@/);
  assert.equal(build.with?.file, "Dockerfile.release");
  assert.equal(build.with?.context, ".");
  assert.deepEqual(String(build.with?.platforms).split(","), ["linux/amd64", "linux/arm64"]);
  assert.equal(build.with?.push, true);
  assert.equal(build.with?.sbom, true);
  assert.match(String(build.with?.provenance), /^(true|mode=max|mode=min)$/);
  assert.equal(build.with?.tags, "${{ env.IMAGE }}:${{ steps.version.outputs.tag }}");
  assert.ok(steps(wf).some((s) => s.uses?.startsWith("docker/setup-buildx-action@")));
  assert.ok(steps(wf).some((s) => s.uses?.startsWith("docker/setup-qemu-action@")));
  const login = step(wf, /^docker\/login-action@/);
  assert.equal(login.with?.registry, "ghcr.io");

  const all = steps(wf);
  const attest = step(wf, /^actions\/attest-build-provenance@/);
  assert.ok(all.indexOf(attest) > all.indexOf(build), "attest after the push");
  assert.equal(attest.with?.["subject-name"], "${{ env.IMAGE }}");
  assert.equal(attest.with?.["subject-digest"], `\${{ steps.${build.id}.outputs.digest }}`);
  assert.equal(attest.with?.["push-to-registry"], true);

  // The checkout uses the resolved tag.
  assert.equal(
    step(wf, /^actions\/checkout@/).with?.ref,
    "refs/tags/${{ steps.version.outputs.tag }}",
  );
});

Deno.test("release.yaml resolves the version from the tag or the kine_version input", async () => {
  const wf = await workflow("release.yaml");
  const resolve = steps(wf).find((s) => s.id === "version");
  assert.ok(resolve?.run);
  const cases: Array<[Record<string, string>, string]> = [
    [{ EVENT: "push", REF_NAME: "v0.16.3.vcluster.0", INPUT_VERSION: "" }, "v0.16.3.vcluster.0"],
    [
      { EVENT: "workflow_dispatch", REF_NAME: "main", INPUT_VERSION: "0.16.3.vcluster.1" },
      "v0.16.3.vcluster.1",
    ],
    [
      { EVENT: "workflow_dispatch", REF_NAME: "main", INPUT_VERSION: "v0.16.3.vcluster.2" },
      "v0.16.3.vcluster.2",
    ],
  ];
  const dir = await Deno.makeTempDir({ prefix: "kine-wf-" });
  try {
    for (const [env, tag] of cases) {
      const out = `${dir}/out`;
      await Deno.writeTextFile(out, "");
      await sh(resolve.run, { env: { ...env, GITHUB_OUTPUT: out } });
      const lines = (await Deno.readTextFile(out)).trim().split("\n");
      assert.deepEqual(lines, [`version=${tag.slice(1)}`, `tag=${tag}`]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --------------------------------------------------------------- Release

Deno.test("release.yml (Release) builds, checksums, attests and uploads kine-<arch>", async () => {
  const wf = await workflow("release.yml");
  assert.equal(wf.name, "Release");
  assert.deepEqual(wf.on, { release: { types: ["created"] } });
  assert.equal(wf.permissions.contents, "write");
  assert.equal(wf.permissions["id-token"], "write");
  assert.equal(wf.permissions.attestations, "write");
  const jobs = Object.values(wf.jobs as Record<string, Yaml>);
  assert.equal(jobs.length, 1);
  assert.deepEqual(jobs[0].strategy.matrix.include, TARGETS);

  const compile = command(step(wf, /deno task compile/));
  const checksum = step(wf, /sha256sum/);
  const attest = step(wf, /^actions\/attest-build-provenance@/);
  const upload = step(wf, /gh release upload/);
  const all = steps(wf);
  assert.ok(
    all.indexOf(checksum) < all.indexOf(upload) && all.indexOf(attest) < all.indexOf(upload),
  );
  assert.equal(checksum["working-directory"], "dist");
  assert.equal(upload["working-directory"], "dist");
  assert.equal(
    command(upload),
    "gh release upload ${{ github.event.release.tag_name }} kine-* *.txt --clobber --repo $GITHUB_REPOSITORY",
  );
  assert.equal(upload.env?.GH_TOKEN, "${{ github.token }}");

  for (const m of TARGETS) {
    assert.equal(
      withMatrix(compile, m),
      `deno task compile --target ${m.target} --output dist/kine-${m.arch}`,
    );
    assert.equal(
      withMatrix(command(checksum), m),
      `sha256sum kine-${m.arch} > sha256sum-${m.arch}.txt`,
    );
    assert.equal(withMatrix(String(attest.with?.["subject-path"]), m), `dist/kine-${m.arch}`);
  }
});

Deno.test("release.yml checksum step output verifies with sha256sum -c; upload globs pick both files", async () => {
  const wf = await workflow("release.yml");
  const checksum = step(wf, /sha256sum/);
  const upload = step(wf, /gh release upload/);
  const globs = command(upload).match(/ (kine-\S+ \*\.txt) /)?.[1];
  assert.equal(globs, "kine-* *.txt");
  const dir = await Deno.makeTempDir({ prefix: "kine-wf-" });
  try {
    for (const { arch } of TARGETS) {
      const dist = `${dir}/${arch}/dist`;
      await Deno.mkdir(dist, { recursive: true });
      await Deno.writeTextFile(`${dist}/kine-${arch}`, `binary for ${arch}\n`);
      await sh(checksum.run!, { cwd: dist, env: { ARCH: arch } });
      const sum = await Deno.readTextFile(`${dist}/sha256sum-${arch}.txt`);
      assert.match(sum, new RegExp(`^[0-9a-f]{64}  kine-${arch}\\n$`));
      assert.equal(
        await sh(`sha256sum -c sha256sum-${arch}.txt`, { cwd: dist }),
        `kine-${arch}: OK\n`,
      );
      const uploaded: string[] = (await sh(`printf '%s\\n' ${globs}`, { cwd: dist })).trim().split(
        "\n",
      );
      assert.deepEqual(uploaded, [`kine-${arch}`, `sha256sum-${arch}.txt`]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------ unit

Deno.test("unit.yml runs .ci/run on pull requests and pushes to main", async () => {
  const wf = await workflow("unit.yml");
  assert.equal(typeof wf.name, "string");
  assert.ok("pull_request" in wf.on);
  assert.deepEqual(wf.on.push, { branches: ["main"] });
  assert.equal(command(step(wf, /\.ci\/run/)), "bash .ci/run");
});

// ------------------------------------------------------------- updatecli

Deno.test("updatecli upstream-kine manifest watches k3s-io/kine >= 0.14.0 and opens a replay PR", async () => {
  const m = await load("updatecli/updatecli.d/upstream-kine.yaml");
  const sources = Object.values(m.sources as Record<string, Yaml>);
  const upstream = sources.find((s) => String(s.kind).toLowerCase() === "githubrelease");
  assert.ok(upstream, "a githubrelease source");
  assert.equal(upstream.spec.owner, "k3s-io");
  assert.equal(upstream.spec.repository, "kine");
  assert.deepEqual(upstream.spec.versionfilter, { kind: "semver", pattern: ">=0.14.0" });
  assert.deepEqual(upstream.transformers, [{ trimprefix: "v" }]);

  const targets = Object.values(m.targets as Record<string, Yaml>);
  assert.equal(targets.length, 1);
  assert.equal(targets[0].kind, "file");
  assert.equal(targets[0].spec.file, "updatecli/upstream-kine-version.txt");
  const tracked = (await Deno.readTextFile(`${ROOT}updatecli/upstream-kine-version.txt`)).trim();
  assert.equal(tracked, "0.16.3");
  assert.match(tracked, new RegExp(targets[0].spec.matchpattern));
  const [maj, min] = tracked.split(".").map(Number);
  assert.ok(maj > 0 || min >= 14, "tracked version satisfies >=0.14.0");

  const actions = Object.values(m.actions as Record<string, Yaml>);
  assert.equal(actions.length, 1);
  assert.equal(actions[0].kind, "github/pullrequest");
  const body: string = actions[0].spec.description;
  assert.ok(body.includes("https://github.com/k3s-io/kine/compare/"), "links the upstream changes");
  assert.ok(body.includes('release/vcluster/v{{ source "upstream" }}'), "names the branch to cut");
  assert.ok(/replay/i.test(body) && body.includes("(fork)"), "says to replay the fork commits");
});

Deno.test("updatecli deno manifest tracks npm deno at the version pinned everywhere", async () => {
  const m = await load("updatecli/updatecli.d/deno.yaml");
  const sources = Object.values(m.sources as Record<string, Yaml>);
  assert.equal(sources.length, 1);
  assert.equal(sources[0].kind, "npm");
  assert.equal(sources[0].spec.name, "deno");

  const pinned = await denoVersion();
  assert.equal(pinned, "2.9.3");
  const targets = Object.values(m.targets as Record<string, Yaml>);
  const files = targets.flatMap((t) => t.spec.files ?? [t.spec.file]);
  assert.ok(files.includes("updatecli/deno-version.txt"));
  assert.ok(files.includes(".ci/run"));
  // Every workflow that installs Deno is covered.
  for (const e of Deno.readDirSync(WORKFLOWS)) {
    const text = await Deno.readTextFile(`${WORKFLOWS}/${e.name}`);
    if (text.includes("deno@")) {
      assert.ok(files.includes(`.github/workflows/${e.name}`), `${e.name} not tracked`);
    }
  }
  // Every existing target file carries the pin in the form the pattern matches.
  for (const t of targets) {
    const re = new RegExp(t.spec.matchpattern);
    for (const f of t.spec.files ?? [t.spec.file]) {
      let text: string;
      try {
        text = await Deno.readTextFile(`${ROOT}${f}`);
      } catch (e) {
        // .ci/run belongs to the CI script, which may not exist yet in a checkout.
        if (f === ".ci/run" && e instanceof Deno.errors.NotFound) continue;
        throw e;
      }
      const found = text.match(new RegExp(re.source, "g")) ?? [];
      assert.ok(found.length > 0, `${f} does not match ${re}`);
      for (const x of found) assert.ok(x.endsWith(pinned), `${f}: ${x} is not ${pinned}`);
    }
  }
});

Deno.test("updatecli debian manifest moves the digest Dockerfile.release pins debian:12-slim at", async () => {
  const m = await load("updatecli/updatecli.d/debian.yaml");
  const source = m.sources.debian;
  assert.equal(source.kind, "dockerdigest");
  assert.deepEqual(source.spec, { image: "debian", tag: "12-slim" });
  assert.deepEqual(source.transformers, [{ addprefix: "debian:" }]);
  const targets = Object.values(m.targets as Record<string, Yaml>);
  assert.equal(targets.length, 1);
  assert.equal(targets[0].kind, "dockerfile");
  assert.equal(targets[0].spec.file, "Dockerfile.release");
  assert.deepEqual(targets[0].spec.instruction, { keyword: "FROM", matcher: "debian" });
  // What the target rewrites: the one FROM, whose image the source's tag names.
  const text = await Deno.readTextFile(`${ROOT}Dockerfile.release`);
  const from = text.split("\n").filter((l) => l.startsWith("FROM "));
  assert.deepEqual(from.map((l) => l.split("@")[0]), ["FROM debian:12-slim"]);
});

Deno.test("updatecli commits pass the fork policy on main", async () => {
  for (const file of ["upstream-kine.yaml", "deno.yaml", "debian.yaml"]) {
    const m = await load(`updatecli/updatecli.d/${file}`);
    const msg = m.scms.default.spec.commitmessage;
    assert.equal(m.scms.default.spec.branch, "main");
    const subject = `${msg.type}(${msg.scope}): ${msg.title}`;
    const files = Object.values(m.targets as Record<string, Yaml>)
      .flatMap((t) => t.spec.files ?? [t.spec.file]);
    assert.deepEqual(checkCommit({ sha: "0000000", subject, files }, "main"), [], file);
  }
});

// ----------------------------------------------------------- deno.json

const TASKS: Record<string, string> =
  JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks ??
    {};

Deno.test({
  name: "deno.json policy task runs the policy CLI with only git and read permissions",
  // Reported as "ignored" (not passed) until the task exists.
  ignore: !("policy" in TASKS),
  fn: async () => {
    assert.equal(
      TASKS.policy,
      "deno run --allow-run=git --allow-read .github/policy/cli.ts",
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "policy", "tag", "v0.16.3.vcluster.0"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(new TextDecoder().decode(out.stdout), /^OK: tag v0\.16\.3\.vcluster\.0 /);
  },
});
