/**
 * lib/server/h2 with clients other than grpc-js and etcdctl: Node's http2
 * client, nghttp and h2load (Debian nghttp2-client); plus the server's own
 * side of the connection: keepalive pings and GOAWAY at shutdown.
 */
import assert from "node:assert/strict";
import * as http2 from "node:http2";
import { Buffer } from "node:buffer";
import { ErrorCode, FrameType } from "../lib/server/h2/frame.ts";
import { b } from "./helpers/client.ts";
import { grpcMessage, method, RawH2 } from "./helpers/h2raw.ts";
import { BACKENDS } from "./helpers/backends.ts";
import { startTestKine, type TestKine, withKine } from "./helpers/kine.ts";

const memory = BACKENDS.find((x) => x.name === "memory")!;
const portOf = (k: TestKine) => Number(k.endpoint.split(":")[1]);

async function tool(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { code: r.code, out: d.decode(r.stdout) + d.decode(r.stderr) };
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(`missing ${cmd}: install Debian package nghttp2-client`);
    }
    throw err;
  }
}

Deno.test("interop: Node's http2 client makes unary calls and reads the trailers", () =>
  withKine(
    async (k) => {
      const session = http2.connect(`http://${k.endpoint}`);
      try {
        const call = (name: string, request: unknown) =>
          new Promise<{ status: string; body: Buffer }>((resolve, reject) => {
            const req = session.request({
              ":method": "POST",
              ":path": method(name).path,
              "content-type": "application/grpc",
              te: "trailers",
            });
            const parts: Buffer[] = [];
            let status = "";
            req.on("data", (d: Buffer) => parts.push(d));
            req.on("trailers", (t) => status = String(t["grpc-status"]));
            req.on("end", () => resolve({ status, body: Buffer.concat(parts) }));
            req.on("error", reject);
            req.end(Buffer.from(grpcMessage(name, request)));
          });
        const put = await call("KV/Put", { key: b("/node"), value: b("http2") });
        assert.equal(put.status, "0");
        const got = await call("KV/Range", { key: b("/node") });
        assert.equal(got.status, "0");
        const res = method("KV/Range").responseDeserialize(got.body.subarray(5));
        assert.equal(new TextDecoder().decode(res.kvs[0].value), "http2");
      } finally {
        session.close();
      }
    },
    {},
    memory,
  ));

Deno.test("interop: nghttp makes a gRPC call; h2load runs 2,000 Puts without a failure", () =>
  withKine(
    async (k) => {
      const dir = await Deno.makeTempDir();
      try {
        const body = `${dir}/put.bin`;
        await Deno.writeFile(body, grpcMessage("KV/Put", { key: b("/h2load"), value: b("v") }));
        const url = `http://${k.endpoint}${method("KV/Put").path}`;
        const headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"];
        const one = await tool("nghttp", ["-v", "-d", body, ...headers, url]);
        assert.equal(one.code, 0, one.out);
        assert.match(one.out, /grpc-status: 0/);
        const load = await tool("h2load", [
          "-n",
          "2000",
          "-c",
          "2",
          "-m",
          "16",
          "-d",
          body,
          ...headers,
          url,
        ]);
        assert.equal(load.code, 0, load.out);
        assert.match(load.out, /2000 succeeded, 0 failed, 0 errored/);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
    {},
    memory,
  ));

Deno.test("keepalive: a client that never answers the server's ping is disconnected", async () => {
  const k = await startTestKine({ grpcKeepaliveInterval: 200, grpcKeepaliveTimeout: 300 }, memory);
  try {
    const c = await RawH2.connect(portOf(k));
    await c.until(() => c.frames.some((f) => f.type === FrameType.PING), 3000, "the server's ping");
    await c.until(() => c.closed, 3000, "the disconnect");
  } finally {
    await k.close();
  }
});

Deno.test("shutdown: open streams get GOAWAY(NO_ERROR) and end; the connection closes", async () => {
  const k = await startTestKine({}, memory);
  const c = await RawH2.connect(portOf(k));
  try {
    await c.call(1, "Watch/Watch", { create_request: { key: b("/w") } }, false);
    await c.until(() => c.messages(1, "Watch/Watch").length > 0, 3000, "watch created");
  } finally {
    await k.close();
  }
  await c.until(() => c.closed, 3000, "close");
  assert.equal(c.goaway(), ErrorCode.NO_ERROR);
  assert.ok(c.status(1) !== undefined || c.reset(1) !== undefined, "the watch stream ended");
});
