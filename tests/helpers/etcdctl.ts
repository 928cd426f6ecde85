import assert from "node:assert/strict";

/** Runs Debian's etcdctl (API v3) against a test server. */
export interface EtcdctlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function etcdctl(
  endpoint: string,
  args: string[],
  options: { stdin?: string; extra?: string[] } = {},
): Promise<EtcdctlResult> {
  const cmd = new Deno.Command("etcdctl", {
    args: [`--endpoints=${endpoint}`, "--command-timeout=10s", ...(options.extra ?? []), ...args],
    env: { ETCDCTL_API: "3" },
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const out = await child.output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** put, get, a prefix list and a delete through kine under `key/`: the conformance basics. */
export async function basics(endpoint: string, key: string): Promise<void> {
  const ok = async (...args: string[]) => {
    const r = await etcdctl(endpoint, args);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };
  assert.equal(await ok("put", `${key}/a`, "1"), "OK\n");
  assert.equal(await ok("put", `${key}/b`, "2"), "OK\n");
  assert.equal(await ok("get", `${key}/a`), `${key}/a\n1\n`);
  assert.equal(await ok("get", "--prefix", "--keys-only", `${key}/`), `${key}/a\n\n${key}/b\n\n`);
  assert.equal(await ok("del", `${key}/a`), "1\n");
  assert.equal(await ok("get", `${key}/a`), "");
}
