/**
 * Reading GitHub workflows for tests: load the YAML, find steps, run a step's shell with stubs.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const WORKFLOWS = `${ROOT}.github/workflows`;

// deno-lint-ignore no-explicit-any
export type Yaml = any;

export interface Step {
  id?: string;
  if?: string;
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
  "working-directory"?: string;
}

export async function load(path: string): Promise<Yaml> {
  return parse(await Deno.readTextFile(`${ROOT}${path}`));
}

export async function workflow(file: string): Promise<Yaml> {
  return await load(`.github/workflows/${file}`);
}

export function steps(wf: Yaml): Step[] {
  return Object.values(wf.jobs as Record<string, { steps: Step[] }>).flatMap((j) => j.steps);
}

/** The single step whose `run` or `uses` matches. */
export function step(wf: Yaml, pattern: RegExp): Step {
  const found = steps(wf).filter((s) => pattern.test(s.run ?? s.uses ?? ""));
  assert.equal(found.length, 1, `expected one step matching ${pattern}, got ${found.length}`);
  return found[0];
}

/**
 * A step's command with its `env:` values substituted back in and shell
 * quoting dropped, so `--base "$BASE_REF"` with `BASE_REF: ${{ github.base_ref }}`
 * reads `--base ${{ github.base_ref }}`.
 */
export function command(s: Step): string {
  assert.ok(s.run, "step has no run");
  let cmd = s.run.trim();
  for (const [k, v] of Object.entries(s.env ?? {})) {
    cmd = cmd.replaceAll(new RegExp(`\\$\\{${k}\\}|\\$${k}\\b`, "g"), String(v));
  }
  return cmd.replaceAll('"', "").replace(/\s+/g, " ");
}

/** Replace `${{ matrix.x }}` placeholders. */
export function withMatrix(text: string, matrix: Record<string, string>): string {
  return text.replace(/\$\{\{\s*matrix\.([a-z_]+)\s*\}\}/g, (_, k) => {
    assert.ok(k in matrix, `unknown matrix key ${k}`);
    return matrix[k];
  });
}

export async function sh(
  script: string,
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-euo", "pipefail", "-c", script],
    cwd: opts.cwd,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  assert.equal(out.code, 0, `script failed: ${script}\n${dec.decode(out.stderr)}`);
  return dec.decode(out.stdout);
}

/**
 * Run a step's script with stub `deno` and `bash` commands first on PATH and
 * return the calls they got, each as `[command, ...args]`: what the step
 * would run, after the shell has expanded its variables.
 */
export async function stubbedCalls(s: Step, env: Record<string, string>): Promise<string[][]> {
  assert.ok(s.run, "step has no run");
  const dir = await Deno.makeTempDir({ prefix: "kine-wf-" });
  try {
    const stub = `#!/bin/sh
{ printf '%s' "$(basename "$0")"; for a; do printf '\\t%s' "$a"; done; echo; } >> "$CALLS"
`;
    for (const name of ["deno", "bash"]) {
      await Deno.writeTextFile(`${dir}/${name}`, stub, { mode: 0o755 });
    }
    const calls = `${dir}/calls`;
    await Deno.writeTextFile(calls, "");
    const out = await new Deno.Command("/bin/bash", {
      args: ["-euo", "pipefail", "-c", s.run],
      cwd: dir,
      env: { ...env, CALLS: calls, PATH: `${dir}:${Deno.env.get("PATH")}` },
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return (await Deno.readTextFile(calls)).split("\n").filter((l) => l !== "")
      .map((l) => l.split("\t"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

export async function denoVersion(): Promise<string> {
  return (await Deno.readTextFile(`${ROOT}updatecli/deno-version.txt`)).trim();
}

/** The release targets: rust triple and image architecture. */
export const TARGETS = [
  { target: "x86_64-unknown-linux-gnu", arch: "amd64" },
  { target: "aarch64-unknown-linux-gnu", arch: "arm64" },
];
