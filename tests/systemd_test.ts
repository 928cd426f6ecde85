// Tests for the systemd unit (docs/systemd/kine.service) and its example
// environment file (docs/systemd/kine.env).
//
// `systemd-analyze verify` must be installed (Debian package `systemd`); the
// test fails, rather than skipping, when it is missing.

import assert from "node:assert/strict";
import { FLAGS, parseArgs } from "../lib/config/mod.ts";

const UNIT = new URL("../docs/systemd/kine.service", import.meta.url);
const ENV = new URL("../docs/systemd/kine.env", import.meta.url);

interface Verify {
  code: number;
  output: string;
}

async function systemdAnalyzeVerify(path: string): Promise<Verify> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("systemd-analyze", {
      args: ["verify", "--man=no", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        "systemd-analyze is not installed; install the Debian package `systemd` " +
          "(apt-get install -y systemd) to run this test",
      );
    }
    throw e;
  }
  const dec = new TextDecoder();
  return { code: out.code, output: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/**
 * Verify a unit text the way it would be installed, with ExecStart pointed at
 * an existing binary. Returns the problems reported for this unit: a non-zero
 * exit or any output line naming the unit (unknown keys and unparsable values
 * are only warnings, exit status 0).
 */
async function unitProblems(text: string): Promise<string[]> {
  const dir = await Deno.makeTempDir({ prefix: "kine-systemd-" });
  try {
    const path = `${dir}/kine.service`;
    await Deno.writeTextFile(
      path,
      text.replace(/^ExecStart=\/usr\/local\/bin\/kine\b/m, "ExecStart=/bin/true"),
    );
    const r = await systemdAnalyzeVerify(path);
    const problems = r.output.split("\n").filter((l) => l.includes("kine.service"));
    if (r.code !== 0) problems.unshift(`systemd-analyze verify exited ${r.code}: ${r.output}`);
    return problems;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Parse `KEY=value` lines of a unit section (no continuation lines are used). */
function section(text: string, name: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      current = m[1];
      continue;
    }
    if (current !== name) continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    out.set(key, [...(out.get(key) ?? []), line.slice(eq + 1)]);
  }
  return out;
}

/** Parse an environment file's active `KEY=value` lines. */
function envFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

Deno.test("kine.service passes systemd-analyze verify", async () => {
  const problems = await unitProblems(await Deno.readTextFile(UNIT));
  assert.deepEqual(problems, []);
});

Deno.test("the verify check catches broken units (negative control)", async () => {
  const good = await Deno.readTextFile(UNIT);
  const unknownKey = await unitProblems(good.replace("[Service]\n", "[Service]\nFrobnicate=yes\n"));
  assert.ok(unknownKey.some((l) => l.includes("Frobnicate")), unknownKey.join("\n"));
  const badValue = await unitProblems(good.replace("Restart=on-failure", "Restart=sometimes"));
  assert.ok(badValue.length > 0, "an invalid Restart= value must be reported");
  const missingBinary = await unitProblems(
    good.replace(/^ExecStart=.*$/m, "ExecStart=/nonexistent/kine"),
  );
  assert.ok(missingBinary.length > 0, "a missing ExecStart binary must be reported");
});

Deno.test("kine.service runs /usr/local/bin/kine sandboxed with its state in /var/lib/kine", async () => {
  const text = await Deno.readTextFile(UNIT);
  const service = section(text, "Service");
  const one = (key: string) => {
    const v = service.get(key);
    assert.ok(v && v.length === 1, `expected exactly one ${key}=`);
    return v[0];
  };
  assert.equal(one("ExecStart"), "/usr/local/bin/kine $KINE_ARGS");
  assert.equal(one("EnvironmentFile"), "-/etc/default/kine");
  assert.equal(one("Restart"), "on-failure");
  assert.equal(one("DynamicUser"), "yes");
  assert.equal(one("StateDirectory"), "kine");
  // kine's default SQLite database is ./db, so the working directory must be the state dir.
  assert.equal(one("WorkingDirectory"), "/var/lib/kine");
  for (const key of ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices"]) {
    assert.equal(one(key), "yes", key);
  }
  assert.equal(one("ProtectSystem"), "strict");
  // The V8 JIT needs W+X memory.
  assert.equal(service.has("MemoryDenyWriteExecute"), false);
  // Service system calls only (V8 also asks for memory protection keys); others fail with EPERM.
  assert.equal(one("SystemCallFilter"), "@system-service @pkey");
  assert.equal(one("SystemCallErrorNumber"), "EPERM");
  assert.equal(one("Type"), "simple");
  assert.equal(section(text, "Install").get("WantedBy")?.[0], "multi-user.target");
});

Deno.test("kine.env only names real KINE_* variables and parses to a valid config", async () => {
  const text = await Deno.readTextFile(ENV);
  const known = new Set(FLAGS.map((f) => f.env));
  const mentioned = new Set(text.match(/\bKINE_[A-Z0-9_]+/g) ?? []);
  mentioned.delete("KINE_ARGS"); // consumed by the unit's ExecStart, not by kine
  assert.ok(mentioned.size > 3);
  for (const name of mentioned) assert.ok(known.has(name), `${name} is not a kine variable`);

  const env = envFile(text);
  assert.equal(env.KINE_ARGS, "");
  const r = parseArgs([], env);
  assert.equal(r.kind, "config", JSON.stringify(r));
  if (r.kind === "config") {
    assert.equal(r.config.listenAddress, "127.0.0.1:2379");
    assert.equal(r.config.endpoint, "");
    assert.equal(r.config.metricsBindAddress, "127.0.0.1:8080");
  }
});
