/** Small process and network utilities for the tests' private servers. */

/** Runs a command to completion; throws with its output when it fails. */
export async function run(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string> } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, env: opts.env, stdin: "null" }).output();
  const d = new TextDecoder();
  if (!out.success) {
    throw new Error(
      `${cmd} ${args.join(" ")} failed (${out.code}):\n${d.decode(out.stdout)}${
        d.decode(out.stderr)
      }`,
    );
  }
  return d.decode(out.stdout);
}

/** Finds `name` on PATH or in `extraDirs`; fails naming the Debian package to install. */
export function need(name: string, debianPackage: string, extraDirs: string[] = []): string {
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin", ...extraDirs];
  for (const dir of dirs) {
    try {
      const path = `${dir}/${name}`;
      if (Deno.statSync(path).isFile) return path;
    } catch { /* not here */ }
  }
  throw new Error(`missing ${name}: install Debian package ${debianPackage}`);
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}: ${err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
