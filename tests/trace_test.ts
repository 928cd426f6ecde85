/**
 * What the daemon tells its operator while it serves: `--debug` traces every request, and a
 * refused TLS handshake or a plaintext client on the TLS port is logged with the peer.
 */
import assert from "node:assert/strict";
import { makeCerts } from "./helpers/certs.ts";
import { ctl, ctlOk, hostPort, inTempDir, serve, start, tlsFlags } from "./helpers/cli.ts";
import { requestTracer } from "../lib/server/trace.ts";
import type { Logger } from "../lib/log/mod.ts";

Deno.test("--debug: one line per request with method, key, range, revision, code and duration", () =>
  inTempDir(async (dir) => {
    const { d, url } = await serve(dir, "t.db", { flags: ["--debug"] });
    try {
      const ep = hostPort(url);
      await ctlOk(ep, ["put", "/trace/a", "1"]);
      await ctlOk(ep, ["get", "--prefix", "/trace/"]);
      const failed = await ctl(ep, ["get", "/trace/a", "--rev=999999"]);
      assert.notEqual(failed.code, 0);
      // --debug lines go to stdout
      const line = async (re: RegExp) => {
        for (let i = 0; i < 100 && !d.stdout.some((l) => re.test(l)); i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        const hit = d.stdout.find((l) => re.test(l));
        assert.ok(hit, `no ${re} in:\n${d.stdout.join("\n")}`);
        return hit;
      };
      await line(
        / DEBUG request method=Put key=\/trace\/a revision=\d+ code=OK took=\d+\.\d{3}ms$/,
      );
      await line(/ DEBUG request method=Range key=\/trace\/ range_end=\/trace0 code=OK took=/);
      await line(
        / DEBUG request method=Range key=\/trace\/a request_revision=999999 code=OutOfRange /,
      );
    } finally {
      await d.dispose();
    }
  }));

Deno.test("without --debug nothing is traced; a slow request is logged at info as etcd does", () => {
  const lines: string[] = [];
  const rec = (level: string) => (msg: string, f?: Record<string, unknown>) =>
    void lines.push(`${level} ${msg} ${JSON.stringify(f ?? {})}`);
  const logger: Logger = {
    trace: rec("trace"),
    debug: rec("debug"),
    info: rec("info"),
    warn: rec("warn"),
    error: rec("error"),
    debugEnabled: false,
    with: () => logger,
  };
  const trace = requestTracer(logger, 100);
  const key = new TextEncoder().encode("/k");
  trace("Range", { key }, { header: { revision: 7 } }, "OK", 99.9);
  assert.deepEqual(lines, []);
  trace("Range", { key }, { header: { revision: 7 } }, "OK", 150);
  assert.deepEqual(lines, [
    'info request took too long {"method":"Range","key":"/k","revision":"7","code":"OK","took":"150.000ms","expected":"100ms"}',
  ]);
});

Deno.test("a refused TLS handshake and a plaintext client are logged at warn with the peer", () =>
  inTempDir(async (dir) => {
    const certs = await makeCerts(dir);
    const { d, url } = await start(tlsFlags(dir, "mtls", certs, "--trusted-ca-file", certs.ca), {
      cwd: dir,
    });
    try {
      const noCert = await ctl(url, ["get", "/x"], {
        extra: ["--cacert", certs.ca],
        timeout: "1500ms",
      });
      assert.notEqual(noCert.code, 0);
      const refused = await d.waitForLine(/WARN rejected TLS handshake/);
      assert.match(refused, /peer=127\.0\.0\.1:\d+ /);
      const plain = await ctl(`http://${hostPort(url)}`, ["get", "/x"], { timeout: "1500ms" });
      assert.notEqual(plain.code, 0);
      const line = await d.waitForLine(/WARN plaintext connection to the TLS listener refused/);
      assert.match(line, /peer=127\.0\.0\.1:\d+ /);
    } finally {
      await d.dispose();
    }
  }));
