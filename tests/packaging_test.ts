/**
 * Packaging: the image (Dockerfile.release, its health check, the release binaries it carries)
 * and the pinning of the workflows' actions.
 */
import assert from "node:assert/strict";
import { parseArgs } from "../lib/config/mod.ts";
import { V8_FLAGS } from "../lib/config/v8_flags.ts";
import { compileArgs } from "../.github/release/compile.ts";
import { ROOT, sh, step, TARGETS, workflow, WORKFLOWS } from "./helpers/workflows.ts";

// ------------------------------------------------------------ pinning

Deno.test("every third-party action is pinned by commit SHA, its version in a comment", async () => {
  let pinned = 0;
  for (const e of Deno.readDirSync(WORKFLOWS)) {
    const text = await Deno.readTextFile(`${WORKFLOWS}/${e.name}`);
    for (const m of text.matchAll(/^\s*(?:-\s*)?uses:\s*(\S+)(.*)$/gm)) {
      const [action, ref] = m[1].split("@");
      if (action.startsWith("./")) continue;
      assert.match(ref, /^[0-9a-f]{40}$/, `${e.name}: ${m[1]} is not pinned by SHA`);
      assert.match(m[2], /^\s+# v\d+\.\d+\.\d+$/, `${e.name}: ${m[1]} names no version`);
      pinned++;
    }
  }
  assert.ok(pinned >= 10, `only ${pinned} pinned uses found`);
});

// ------------------------------------------------------------ V8 flags

Deno.test("deno task start and the compiled binary run with kine's V8 flags", async () => {
  const flag = `--v8-flags=${V8_FLAGS}`;
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)).tasks;
  const start: string[] = tasks.start.split(" ");
  // A deno flag: before the script, whose own flags follow it.
  assert.ok(
    start.indexOf(flag) >= 0 && start.indexOf(flag) < start.indexOf("main.ts"),
    tasks.start,
  );
  const compile = compileArgs(undefined, "dist/kine");
  assert.ok(compile.indexOf(flag) >= 0 && compile.indexOf(flag) < compile.indexOf("main.ts"));
  // Each flag is one V8 knows: deno refuses to start with an unknown one.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", flag, "--quiet", "data:text/javascript,"],
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
});

// ------------------------------------------------------------ Dockerfile

Deno.test("Dockerfile.release packages dist/kine-${TARGETARCH} as a non-root image on 2379", async () => {
  const text = await Deno.readTextFile(`${ROOT}Dockerfile.release`);
  const lines = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const from = lines.filter((l) => l.startsWith("FROM "));
  // Pinned by the digest of the tag's multi-arch index; updatecli moves the pin.
  assert.equal(from.length, 1);
  assert.match(from[0], /^FROM debian:12-slim@sha256:[0-9a-f]{64}$/);
  assert.ok(lines.includes("ARG TARGETARCH"));
  assert.ok(
    /apt-get install -y --no-install-recommends libgssapi-krb5-2 ca-certificates/.test(text),
  );
  assert.ok(lines.some((l) => /^COPY .*dist\/kine-\$\{TARGETARCH\} \/bin\/kine$/.test(l)));
  const user = lines.find((l) => l.startsWith("USER "));
  assert.ok(user && !/^USER (root|0)\b/.test(user), "runs as non-root");
  assert.ok(lines.includes("EXPOSE 2379"));
  // The default SQLite database (./db in the working directory) lives on a volume.
  assert.ok(lines.includes("WORKDIR /var/lib/kine"));
  assert.ok(lines.includes("VOLUME /var/lib/kine"));
  assert.ok(lines.includes('ENTRYPOINT ["/bin/kine"]'));
  const cmd = lines.find((l) => l.startsWith("CMD "));
  const args: string[] = JSON.parse(cmd!.slice(4));
  assert.deepEqual(args, ["--listen-address=0.0.0.0:2379"]);
  const r = parseArgs(args, {});
  assert.equal(r.kind, "config");
  if (r.kind === "config") assert.equal(r.config.listenAddress, "0.0.0.0:2379");

  // The image build fetches exactly the binaries the Dockerfile copies, and release.yml makes them.
  const wf = await workflow("release.yaml");
  const platforms = String(step(wf, /^docker\/build-push-action@/).with?.platforms).split(",");
  const script = await Deno.readTextFile(`${ROOT}.github/release/fetch-binaries.sh`);
  const arches = /^arches=\((.*)\)$/m.exec(script)?.[1].split(" ");
  assert.deepEqual(arches, platforms.map((p) => p.split("/")[1]));
  assert.deepEqual(arches, TARGETS.map((t) => t.arch));
});

Deno.test("fetch-binaries.sh verifies the release's binaries against its checksums, waiting for them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-fetch-" });
  try {
    // A stub gh: "release download <tag> --dir <d> …" copies what $RELEASE holds, counting calls.
    await Deno.mkdir(`${dir}/bin`);
    await Deno.writeTextFile(
      `${dir}/bin/gh`,
      `#!/bin/bash
echo x >> "$CALLS"; [ "$1 $2 $3" = "release download v1" ] || exit 9
while [ $# -gt 0 ]; do [ "$1" = --dir ] && out=$2; shift; done
cp "$RELEASE"/* "$out"/ 2>/dev/null; exit 0
`,
      { mode: 0o755 },
    );
    const release = `${dir}/release`;
    await Deno.mkdir(release);
    const run = async (env: Record<string, string> = {}) => {
      await Deno.remove(`${dir}/dist`, { recursive: true }).catch(() => {});
      const out = await new Deno.Command("bash", {
        args: [`${ROOT}.github/release/fetch-binaries.sh`, "v1", `${dir}/dist`],
        env: {
          PATH: `${dir}/bin:${Deno.env.get("PATH")}`,
          RELEASE: release,
          CALLS: `${dir}/calls`,
          FETCH_TRIES: "3",
          FETCH_WAIT: "0",
          ...env,
        },
        clearEnv: true,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const calls = (await Deno.readTextFile(`${dir}/calls`)).split("\n").length - 1;
      await Deno.writeTextFile(`${dir}/calls`, "");
      return { code: out.code, calls, stderr: new TextDecoder().decode(out.stderr) };
    };
    await Deno.writeTextFile(`${dir}/calls`, "");
    // Nothing uploaded yet: gives up after FETCH_TRIES attempts.
    const empty = await run();
    assert.equal(empty.code, 1);
    assert.equal(empty.calls, 3);
    assert.match(empty.stderr, /release v1 lacks kine-<arch> and sha256sum-<arch>\.txt/);
    for (const arch of ["amd64", "arm64"]) {
      await Deno.writeTextFile(`${release}/kine-${arch}`, `binary ${arch}\n`);
      await sh(`sha256sum kine-${arch} > sha256sum-${arch}.txt`, { cwd: release });
    }
    const ok = await run();
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.calls, 1);
    assert.equal((await Deno.stat(`${dir}/dist/kine-arm64`)).mode! & 0o777, 0o755);
    // A binary that is not the one checksummed is refused.
    await Deno.writeTextFile(`${release}/kine-arm64`, "tampered\n");
    const bad = await run();
    assert.notEqual(bad.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Dockerfile.release HEALTHCHECK passes against a serving kine and fails without one", async () => {
  const text = await Deno.readTextFile(`${ROOT}Dockerfile.release`);
  const m = /^HEALTHCHECK (.*?)\\\n\s+CMD (\[.*\])$/m.exec(text);
  assert.ok(m, "a HEALTHCHECK with an exec-form CMD");
  assert.match(m[1], /--interval=\S+ --timeout=\S+/);
  const cmd: string[] = JSON.parse(m[2]);
  assert.ok(cmd.join(" ").includes("/dev/tcp/127.0.0.1/8080"), "the default metrics address");
  const { startKine } = await import("../lib/mod.ts");
  const { silentLogger } = await import("../lib/log/mod.ts");
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    metricsBindAddress: "127.0.0.1:0",
    endpoint: "memory://",
  }, silentLogger);
  const check = async (port: string) => {
    const [exe, ...args] = cmd.map((a) => a.replace("/8080", `/${port}`));
    return (await new Deno.Command(exe, { args, stdout: "null", stderr: "null" }).output()).code;
  };
  try {
    assert.equal(await check(new URL(kine.metricsUrl!).port), 0);
  } finally {
    await kine.close();
  }
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = String((closed.addr as Deno.NetAddr).port);
  closed.close();
  assert.notEqual(await check(port), 0, "nothing listening: unhealthy");
});
