/** The compile task and the embedding example, as far as this machine can run them. */
import assert from "node:assert/strict";
import {
  checkArgs,
  compileArgs,
  runtimeFetchError,
  versionSource,
} from "../.github/release/compile.ts";
import { etcdctl } from "./helpers/etcdctl.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const dec = new TextDecoder();

Deno.test("compile task stamps the tag's version and embeds the protos", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "task",
      "-q",
      "compile",
      "--dry-run",
      "--target",
      "aarch64-unknown-linux-gnu",
      "--output",
      "dist/kine-arm64",
    ],
    cwd: ROOT,
    env: { KINE_VERSION: "v0.16.3.vcluster.7" },
  }).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  const text = dec.decode(out.stdout);
  assert.match(text, /export const VERSION = "v0\.16\.3\.vcluster\.7";/);
  assert.match(
    text,
    /deno compile --allow-all --v8-flags=--max-semi-space-size=2,--heap-growing-percent=50 --include proto\/ --include lib\/backend\/sql\/checkpointer\.ts --include lib\/auth\/bcrypt_worker\.ts --target aarch64-unknown-linux-gnu --output dist\/kine-arm64 main\.ts/,
  );
  assert.deepEqual(compileArgs(undefined, "x").slice(-3), ["--output", "x", "main.ts"]);
  assert.match(versionSource("v1", "abc"), /GIT_COMMIT = "abc"/);
});

Deno.test("deno task compile --help prints usage; bad arguments exit 2; a failed runtime download is one line", async () => {
  const task = async (...args: string[]) => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "compile", ...args],
      cwd: ROOT,
    }).output();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  };
  const help = await task("--help");
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^usage: deno task compile/);
  assert.match(help.stdout, /DENORT_BIN/);
  const bad = await task("--target");
  assert.equal(bad.code, 2);
  assert.equal(bad.stderr.trim(), "compile: --target needs a value (see deno task compile --help)");
  assert.equal(checkArgs(["--target", "x", "--output", "y", "--dry-run"]), undefined);
  assert.equal(checkArgs(["build"]), 'unknown argument "build"');
  // What deno compile 2.9.3 prints without network (recorded on this machine).
  const offline = `Download https://dl.deno.land/release/v2.9.3/denort-aarch64-unknown-linux-gnu.zip
error: Writing deno compile executable to temporary file 'dist/kine-arm64.tmp-57f858a6a2b8bebd'

Caused by:
    0: Setting up base binary.
    1: error sending request for url (https://dl.deno.land/release/v2.9.3/denort-aarch64-unknown-linux-gnu.zip): client error (Connect): dns error: failed to lookup address information: Name or service not known
Stack backtrace:
   0: <unknown>`;
  const line = runtimeFetchError(offline, "aarch64-unknown-linux-gnu");
  assert.ok(line && !line.includes("\n"));
  assert.match(line, /cannot fetch the Deno runtime \(denort\) for aarch64-unknown-linux-gnu/);
  assert.match(line, /DENORT_BIN/);
  assert.equal(runtimeFetchError("error: Type checking failed.", undefined), undefined);
});

Deno.test("the binary's module graph is local and npm only, and its run-time files are included", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "main.ts"],
    cwd: ROOT,
  }).output();
  assert.equal(out.code, 0, dec.decode(out.stderr));
  const graph = JSON.parse(dec.decode(out.stdout));
  const specifiers: string[] = graph.modules.map((m: { specifier: string }) => m.specifier);
  for (const s of specifiers) assert.match(s, /^(file:|npm:|node:)/, `remote module ${s}`);
  assert.ok(specifiers.some((s) => s.endsWith("/lib/server/proto.ts")));
  const npm = Object.keys(graph.npmPackages ?? {}).join(" ");
  assert.match(npm, /@grpc\/proto-loader@/);
  // proto.ts reads these at run time; `--include proto/` puts them in the binary.
  const protos = [...Deno.readDirSync(`${ROOT}proto`)].map((e) => e.name).sort();
  assert.deepEqual(protos, ["etcd.proto", "health.proto"]);
});

Deno.test("docs/embed/example.ts serves etcd in-process and stops on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-embed-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "docs/embed/example.ts", dir],
    cwd: ROOT,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/etcd endpoint: http:\/\/\S+\n/.test(seen)) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    reader.releaseLock();
    const url = /etcd endpoint: (http:\/\/\S+)/.exec(seen)?.[1];
    assert.ok(url, `no endpoint line in ${JSON.stringify(seen)}`);
    const endpoint = url.replace("http://", "");
    assert.equal((await etcdctl(endpoint, ["put", "/embedded", "yes"])).stdout.trim(), "OK");
    assert.equal(
      (await etcdctl(endpoint, ["get", "/embedded", "--print-value-only"])).stdout.trim(),
      "yes",
    );
    child.kill("SIGTERM");
    assert.equal((await child.status).code, 0);
    assert.ok((await Deno.stat(`${dir}/state.db`)).isFile);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.stdout.cancel().catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
