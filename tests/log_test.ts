import assert from "node:assert/strict";
import { createLogger, silentLogger, type SyncWriter } from "../lib/log/mod.ts";

const LOG_MOD = new URL("../lib/log/mod.ts", import.meta.url).href;

/** Runs `body` in a fresh Deno process with `createLogger` imported; returns its stdout/stderr. */
async function runScript(body: string): Promise<{ stdout: string; stderr: string }> {
  const code = `import { createLogger } from ${JSON.stringify(LOG_MOD)};\n${body}`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", code],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = new TextDecoder();
  const res = { stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  assert.ok(out.success, `subprocess failed: ${res.stderr}`);
  return res;
}

function lines(s: string): string[] {
  return s.split("\n").filter((l) => l !== "");
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/;

Deno.test("json format: one object per line on stderr; debug suppressed when off", async () => {
  const { stdout, stderr } = await runScript(`
    const log = createLogger({ format: "json", debug: false });
    log.trace("hidden trace");
    log.debug("hidden debug");
    log.info("Kine available at http://127.0.0.1:2379", { port: 2379, tls: false });
    log.warn("careful", { err: new Error("disk slow"), big: 12n, nested: { a: [1, "x"] } });
    log.error("failed", { time: "user", message: "user", severity: "user" });
  `);
  assert.equal(stdout, "");
  const objs = lines(stderr).map((l) => JSON.parse(l));
  assert.equal(objs.length, 3);

  const [info, warn, error] = objs;
  assert.deepEqual(Object.keys(info).slice(0, 3), ["time", "severity", "message"]);
  assert.match(info.time, ISO);
  assert.ok(Math.abs(Date.parse(info.time) - Date.now()) < 60_000);
  assert.equal(info.severity, "info");
  assert.equal(info.message, "Kine available at http://127.0.0.1:2379");
  assert.equal(info.port, 2379);
  assert.equal(info.tls, false);
  assert.equal(info.level, undefined);
  assert.equal(info.msg, undefined);

  assert.equal(warn.severity, "warning");
  assert.equal(warn.err, "disk slow");
  assert.equal(warn.big, "12");
  assert.deepEqual(warn.nested, { a: [1, "x"] });

  assert.equal(error.severity, "error");
  assert.equal(error.message, "failed");
  assert.equal(error["fields.time"], "user");
  assert.equal(error["fields.message"], "user");
  assert.equal(error["fields.severity"], "user");
});

Deno.test("debug on: trace/debug go to stdout, info stays on stderr", async () => {
  const { stdout, stderr } = await runScript(`
    const log = createLogger({ format: "json", debug: true });
    log.trace("t1");
    log.debug("d1", { k: 1 });
    log.info("i1");
  `);
  const out = lines(stdout).map((l) => JSON.parse(l));
  assert.deepEqual(out.map((o) => [o.severity, o.message]), [["trace", "t1"], ["debug", "d1"]]);
  assert.equal(out[1].k, 1);
  const err = lines(stderr).map((l) => JSON.parse(l));
  assert.deepEqual(err.map((o) => [o.severity, o.message]), [["info", "i1"]]);
});

Deno.test("plain format: time LEVEL message k=v", async () => {
  const { stdout, stderr } = await runScript(`
    const log = createLogger({ format: "plain", debug: false });
    log.debug("nope");
    log.info("Kine available at unix://kine.sock", { n: 1, s: "two words", e: "", ok: "a/b:c" });
    log.warn("w");
  `);
  assert.equal(stdout, "");
  const ls = lines(stderr);
  assert.equal(ls.length, 2);
  const m = /^(\S+) INFO Kine available at unix:\/\/kine\.sock (.*)$/.exec(ls[0]);
  assert.ok(m, ls[0]);
  assert.match(m[1], ISO);
  assert.equal(m[2], 'n=1 s="two words" e="" ok=a/b:c');
  assert.match(ls[1], /^\S+ WARN w$/);
});

/** Collects writes in memory, optionally accepting only a few bytes per call. */
function sink(chunk = Infinity): SyncWriter & { text(): string } {
  const parts: Uint8Array[] = [];
  return {
    writeSync(p: Uint8Array): number {
      const n = Math.min(p.length, chunk);
      parts.push(p.slice(0, n));
      return n;
    },
    text: () => new TextDecoder().decode(new Uint8Array(parts.flatMap((p) => [...p]))),
  };
}

Deno.test("injected sinks, partial writes, with() fields and debugEnabled", () => {
  const out = sink();
  const err = sink(3); // forces the write loop to handle short writes
  const log = createLogger({ format: "json", debug: true, stdout: out, stderr: err });
  assert.equal(log.debugEnabled, true);
  const child = log.with({ component: "poll", n: 1 });
  child.info("hello", { n: 2 });
  child.debug("dbg");
  const e = JSON.parse(err.text());
  assert.equal(e.component, "poll");
  assert.equal(e.n, 2); // call-site fields win
  assert.equal(JSON.parse(out.text()).component, "poll");

  const qOut = sink();
  const qErr = sink();
  const quiet = createLogger({ debug: false, stdout: qOut, stderr: qErr });
  assert.equal(quiet.debugEnabled, false);
  quiet.trace("t");
  quiet.debug("d", { k: 1 });
  assert.equal(qOut.text() + qErr.text(), "");
});

Deno.test("a throwing sink never propagates", () => {
  const broken: SyncWriter = {
    writeSync() {
      throw new Deno.errors.BrokenPipe("closed");
    },
  };
  const log = createLogger({ stderr: broken, stdout: broken, debug: true });
  log.error("x");
  log.debug("y");
});

Deno.test("silentLogger discards everything", () => {
  for (const fn of [silentLogger.trace, silentLogger.debug, silentLogger.info]) fn("x", { a: 1 });
  silentLogger.warn("x");
  silentLogger.error("x");
  assert.equal(silentLogger.debugEnabled, false);
  assert.equal(silentLogger.with({ a: 1 }), silentLogger);
});
