/**
 * Builds the Go load generator (bench/loadgen) when its binary is missing or
 * older than its sources. It uses Debian's Go toolchain (`golang-go`) and the
 * etcd client sources of `golang-etcd-server-dev` in GOPATH mode, so nothing
 * is downloaded; as root the bench installs both packages when they are missing.
 *
 * @module
 */

const SOURCES = new URL("./loadgen/", import.meta.url).pathname;
/** Where the built binary lives (git-ignored). */
export const LOADGEN_BIN = new URL("./.bin/loadgen", import.meta.url).pathname;
/** Debian's GOPATH: the packaged Go sources, clientv3 among them. */
const GOPATH = "/usr/share/gocode";
const CLIENTV3 = `${GOPATH}/src/go.etcd.io/etcd/clientv3`;

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}

function exists(path: string): boolean {
  return mtime(path) > 0;
}

async function run(
  cmd: string,
  args: string[],
  o: { env?: Record<string, string>; cwd?: string } = {},
): Promise<string> {
  const out = await new Deno.Command(cmd, { args, ...o, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed:\n${text.trim()}`);
  return text;
}

async function onPath(cmd: string): Promise<boolean> {
  try {
    await run("sh", ["-c", `command -v ${cmd}`]);
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure Debian packages are installed for each missing requirement:
 * installs them as root, or throws naming the packages.
 */
export async function requirePackages(missing: { what: string; pkg: string }[]): Promise<void> {
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  const list = missing.map((m) => m.what).join(", ");
  if (Deno.uid() !== 0 || !(await onPath("apt-get"))) {
    throw new Error(`missing ${list}: install Debian package(s) ${pkgs.join(" ")}`);
  }
  console.error(`installing ${pkgs.join(" ")} (for ${list}) ...`);
  await run("apt-get", ["update", "-qq"]);
  await run("apt-get", ["install", "-y", "-qq", ...pkgs], {
    env: { DEBIAN_FRONTEND: "noninteractive" },
  });
}

/** Returns the path of an up-to-date load generator binary, building it first if needed. */
export async function ensureLoadgen(): Promise<string> {
  const sources = [...Deno.readDirSync(SOURCES)].filter((e) => e.name.endsWith(".go"))
    .map((e) => `${SOURCES}${e.name}`);
  const newest = Math.max(...sources.map(mtime));
  if (exists(LOADGEN_BIN) && mtime(LOADGEN_BIN) >= newest) return LOADGEN_BIN;
  const missing = [];
  if (!(await onPath("go"))) missing.push({ what: "go", pkg: "golang-go" });
  if (!exists(CLIENTV3)) {
    missing.push({ what: "etcd's Go client sources", pkg: "golang-etcd-server-dev" });
  }
  await requirePackages(missing);
  console.error("building the Go load generator (bench/loadgen) ...");
  // The build cache sits beside the binary: a rebuild after an edit takes seconds.
  const cache = new URL("./.bin/gocache", import.meta.url).pathname;
  await Deno.mkdir(cache, { recursive: true });
  await run("go", ["build", "-o", LOADGEN_BIN, "."], {
    cwd: SOURCES,
    env: { GO111MODULE: "off", GOPATH, GOCACHE: cache, GOFLAGS: "" },
  }).catch((err) => {
    throw new Error(`building the load generator failed: ${(err as Error).message}`);
  });
  return LOADGEN_BIN;
}
