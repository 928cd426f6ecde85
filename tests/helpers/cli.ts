/**
 * The kine command as a child process, for tests: spawn it, collect its output line by line, wait
 * for its readiness line, run etcdctl against it.
 */
import assert from "node:assert/strict";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;
export const READY = / available at ((?:https?|unixs?):\/\/[^\s"]+)/;

/**
 * The test's environment without any KINE_* variable and without
 * GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (grpc-js turns it into the TLS listener's client-CA list; see
 * the KNOWN BUG test below), plus `extra`.
 */
export function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (!k.startsWith("KINE_") && k !== "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH") env[k] = v;
  }
  return { ...env, ...extra };
}

/** A kine process whose output is collected line by line. */
export class Daemon {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly status: Promise<Deno.CommandStatus>;
  exited = false;
  readonly #readers: Promise<void>[];
  readonly #waiters = new Set<() => void>();

  constructor(readonly child: Deno.ChildProcess, readonly cwd: string) {
    this.#readers = [this.#pump(child.stdout, this.stdout), this.#pump(child.stderr, this.stderr)];
    this.status = child.status.then((s) => {
      this.exited = true;
      this.#wake();
      return s;
    });
  }

  async #pump(stream: ReadableStream<Uint8Array>, sink: string[]): Promise<void> {
    let buf = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        sink.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.#wake();
    }
    if (buf) sink.push(buf);
    this.#wake();
  }

  #wake() {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves with the first stderr line matching `re`; rejects if kine exits first or on timeout. */
  async waitForLine(re: RegExp, ms = 15_000): Promise<string> {
    const deadline = Date.now() + ms;
    while (true) {
      const hit = this.stderr.find((l) => re.test(l));
      if (hit !== undefined) return hit;
      if (this.exited) {
        await Promise.all(this.#readers);
        const late = this.stderr.find((l) => re.test(l));
        if (late !== undefined) return late;
        throw new Error(`kine exited before logging ${re}:\n${this.stderr.join("\n")}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}:\n${this.stderr.join("\n")}`);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.#waiters.add(done);
      });
    }
  }

  /** Waits for the process to end (at most `ms`, then kills it) and for its output. */
  async finish(ms = 10_000): Promise<Deno.CommandStatus> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<"timeout">((r) => timer = setTimeout(() => r("timeout"), ms));
    const first = await Promise.race([this.status, timeout]);
    clearTimeout(timer);
    if (first === "timeout") this.kill("SIGKILL");
    const status = await this.status;
    await Promise.all(this.#readers);
    if (first === "timeout") throw new Error(`kine did not exit within ${ms} ms`);
    return status;
  }

  kill(signal: Deno.Signal) {
    if (!this.exited) {
      try {
        this.child.kill(signal);
      } catch { /* already gone */ }
    }
  }

  /** Kills the process if it still runs and collects everything; for finally blocks. */
  async dispose() {
    this.kill("SIGKILL");
    await this.status;
    await Promise.all(this.#readers);
  }
}

export interface SpawnOptions {
  cwd: string;
  env?: Record<string, string>;
}

export function spawn(flags: string[], o: SpawnOptions): Daemon {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...flags],
    cwd: o.cwd,
    env: childEnv(o.env),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  return new Daemon(child, o.cwd);
}

/** Starts kine and waits for its readiness line; returns the advertised URL. */
export async function start(flags: string[], o: SpawnOptions): Promise<{ d: Daemon; url: string }> {
  const d = spawn(flags, o);
  try {
    const line = await d.waitForLine(READY);
    return { d, url: READY.exec(line)![1] };
  } catch (err) {
    await d.dispose();
    throw err;
  }
}

/** How {@link serve} starts kine beyond its defaults. */
export interface Serve {
  listen?: string;
  metrics?: string;
  flags?: string[];
  env?: Record<string, string>;
}

/** Starts kine in `dir` on `sqlite://<dir>/<db>`, on a free loopback port, metrics off. */
export function serve(dir: string, db: string, o: Serve = {}): Promise<{ d: Daemon; url: string }> {
  return start([
    "--listen-address",
    o.listen ?? "127.0.0.1:0",
    "--metrics-bind-address",
    o.metrics ?? "0",
    "--endpoint",
    `sqlite://${dir}/${db}`,
    ...(o.flags ?? []),
  ], { cwd: dir, env: o.env });
}

/** Runs kine to completion (it must exit on its own within 15 s). */
export async function run(flags: string[], o: Partial<SpawnOptions> = {}) {
  const dir = o.cwd ?? await Deno.makeTempDir({ prefix: "kine-cli-" });
  const d = spawn(flags, { cwd: dir, env: o.env });
  try {
    const status = await d.finish(15_000);
    return {
      code: status.code,
      stdout: d.stdout.join("\n"),
      stderr: d.stderr.join("\n"),
      stderrLines: d.stderr.filter((l) => l !== ""),
    };
  } finally {
    await d.dispose();
    if (o.cwd === undefined) await Deno.remove(dir, { recursive: true });
  }
}

/** A fresh temp dir for `fn`, always removed. */
export async function inTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "kine-cli-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs etcdctl against `endpoint` (any scheme), optionally from `cwd` and with extra flags. */
export async function ctl(
  endpoint: string,
  args: string[],
  o: { cwd?: string; extra?: string[]; timeout?: string } = {},
) {
  const out = await new Deno.Command("etcdctl", {
    args: [
      `--endpoints=${endpoint}`,
      "--dial-timeout=2s",
      `--command-timeout=${o.timeout ?? "5s"}`,
      ...(o.extra ?? []),
      ...args,
    ],
    cwd: o.cwd,
    env: { ETCDCTL_API: "3" },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

export async function ctlOk(endpoint: string, args: string[], o: Parameters<typeof ctl>[2] = {}) {
  const r = await ctl(endpoint, args, o);
  assert.equal(r.code, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Asserts a failed run printed exactly one line and nothing that looks like a stack trace. */
export function assertOneLineError(r: Awaited<ReturnType<typeof run>>, code: number, text: string) {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  assert.equal(r.stderrLines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
  assert.ok(r.stderrLines[0].includes(text), `${JSON.stringify(text)} not in ${r.stderrLines[0]}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
  assert.doesNotMatch(r.stderr, /Uncaught|Stack backtrace|error: /);
  assert.equal(r.stdout, "");
}

export async function waitForMetricsUrl(d: Daemon): Promise<string> {
  const line = await d.waitForLine(/Metrics server listening/);
  const m = /(https?:\/\/127\.0\.0\.1:[1-9][0-9]*\/metrics)/.exec(line);
  assert.ok(m, `no metrics URL in ${line}`);
  return m[1];
}

/** A TLS daemon on free ports with its own SQLite file in `dir`, plus `extra` flags. */
export function tlsFlags(
  dir: string,
  db: string,
  certs: { serverCert: string; serverKey: string },
  ...extra: string[]
): string[] {
  return [
    "--listen-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "127.0.0.1:0",
    "--endpoint",
    `sqlite://${dir}/${db}.db`,
    "--server-cert-file",
    certs.serverCert,
    "--server-key-file",
    certs.serverKey,
    ...extra,
  ];
}

export const hostPort = (url: string) => url.replace(/^[a-z]+:\/\//, "");
