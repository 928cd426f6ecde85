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
