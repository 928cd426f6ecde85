/**
 * HTTP/2 abuse against lib/server/h2: each attack is answered the way the
 * RFC or the CVE's fix says, stays bounded in time and memory, and a
 * well-behaved client on another connection is served throughout.
 */
import assert from "node:assert/strict";
import { concat } from "../lib/server/h2/connection.ts";
import { ErrorCode, Flag, frame, FrameType, Setting } from "../lib/server/h2/frame.ts";
import { encodeHeaders } from "../lib/server/h2/hpack.ts";
import { b, s } from "./helpers/client.ts";
import { grpcMessage, RawH2, requestHeaders } from "./helpers/h2raw.ts";
import { BACKENDS } from "./helpers/backends.ts";
import { startTestKine, type TestKine } from "./helpers/kine.ts";
import type { KineConfig } from "../lib/mod.ts";

const memory = BACKENDS.find((x) => x.name === "memory")!;

async function withServer(
  fn: (k: TestKine, port: number) => Promise<void>,
  config: Partial<KineConfig> = {},
): Promise<void> {
  const k = await startTestKine(config, memory);
  try {
    await fn(k, Number(k.endpoint.split(":")[1]));
  } finally {
    await k.close();
  }
}

/** A well-behaved client still gets answers, quickly. */
async function stillServes(k: TestKine): Promise<void> {
  const t0 = performance.now();
  await k.client.kv.put({ key: b("/ok"), value: b("yes") });
  const r = await k.client.kv.range({ key: b("/ok") });
  assert.equal(s(r.kvs[0].value), "yes");
  assert.ok(performance.now() - t0 < 2000, "the other client waited");
}

Deno.test("h2 abuse: rapid reset (CVE-2023-44487) ends the connection with ENHANCE_YOUR_CALM", () =>
  withServer(async (k, port) => {
    const c = await RawH2.connect(port);
    const burst: Uint8Array[] = [];
    const headers = requestHeaders("KV/Range");
    for (let id = 1; id < 2 * 5000; id += 2) {
      burst.push(frame(FrameType.HEADERS, Flag.END_HEADERS, id, headers));
      burst.push(frame(FrameType.RST_STREAM, 0, id, u32(ErrorCode.CANCEL)));
    }
    await c.write(concat(burst));
    await c.until(() => c.goaway() !== undefined, 5000, "GOAWAY");
    assert.equal(c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
    await c.until(() => c.closed, 5000, "close");
    await stillServes(k);
  }));

Deno.test("h2 abuse: a CONTINUATION flood (CVE-2024-27316) is cut off at a bounded size", () =>
  withServer(async (k, port) => {
    const c = await RawH2.connect(port);
    await c.send(FrameType.HEADERS, 0, 1, requestHeaders("KV/Range"));
    const junk = new Uint8Array(16_000).fill(0x41);
    for (let i = 0; i < 200 && !c.closed; i++) {
      await c.send(FrameType.CONTINUATION, 0, 1, junk);
    }
    await c.until(() => c.goaway() !== undefined, 5000, "GOAWAY");
    assert.equal(c.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
    await stillServes(k);
  }));

Deno.test("h2 abuse: an HPACK bomb and an oversized header list are refused, the connection lives", () =>
  withServer(async (k, port) => {
    const c = await RawH2.connect(port);
    // One 4,000-byte entry added to the dynamic table, then 2,000 one-byte references to it.
    const value = "x".repeat(4000);
    const literal = [0x40, 0x01, 0x62, 0x7f, 0xa1, 0x1e, ...new TextEncoder().encode(value)];
    const bomb = Uint8Array.from([
      ...requestHeaders("KV/Range"),
      ...literal,
      ...new Array(2000).fill(0xbe),
    ]);
    const t0 = performance.now();
    await c.send(FrameType.HEADERS, Flag.END_HEADERS | Flag.END_STREAM, 1, bomb);
    await c.until(() => c.reset(1) !== undefined, 5000, "RST_STREAM for the bomb");
    assert.equal(c.reset(1), ErrorCode.REFUSED_STREAM);
    // A single 20 KB header (over the 16 KiB list limit).
    const big = encodeHeaders([["x-big", "y".repeat(20_000)]]);
    const block = Uint8Array.from([...requestHeaders("KV/Range"), ...big]);
    await c.send(FrameType.HEADERS, 0, 3, block.subarray(0, 16_000));
    await c.send(FrameType.CONTINUATION, Flag.END_HEADERS, 3, block.subarray(16_000));
    await c.until(() => c.reset(3) !== undefined, 5000, "RST_STREAM for the large list");
    assert.ok(performance.now() - t0 < 2000);
    // The decoder stayed in sync with ours: the same connection serves a call.
    await c.call(5, "KV/Range", { key: b("/nothing") });
    await c.until(() => c.status(5) !== undefined, 5000, "the next call's status");
    assert.equal(c.status(5)!.code, 0);
    assert.equal(c.goaway(), undefined);
    c.close();
    await stillServes(k);
  }));

Deno.test("h2 abuse: SETTINGS floods are answered, PING floods get GOAWAY too_many_pings", () =>
  withServer(async (k, port) => {
    const c = await RawH2.connect(port);
    const settings = frame(
      FrameType.SETTINGS,
      0,
      0,
      Uint8Array.of(0, Setting.MAX_CONCURRENT_STREAMS, 0, 0, 0, 100),
    );
    await c.write(concat(new Array(20_000).fill(settings)));
    await c.until(
      () =>
        c.frames.filter((f) => f.type === FrameType.SETTINGS && f.flags & Flag.ACK).length >=
          20_000 ||
        c.closed,
      10_000,
      "SETTINGS acks",
    );
    await stillServes(k);
    c.close();

    const p = await RawH2.connect(port);
    const ping = frame(FrameType.PING, 0, 0, new Uint8Array(8));
    await p.write(concat(new Array(1000).fill(ping)));
    await p.until(() => p.goaway() !== undefined, 5000, "GOAWAY");
    assert.equal(p.goaway(), ErrorCode.ENHANCE_YOUR_CALM);
    const debug = new TextDecoder().decode(
      p.frames.find((f) => f.type === FrameType.GOAWAY)!.payload.subarray(8),
    );
    assert.equal(debug, "too_many_pings");
    // Only a handful were answered before the connection ended.
    assert.ok(p.frames.filter((f) => f.type === FrameType.PING).length <= 3);
    await stillServes(k);
  }));

Deno.test("h2 abuse: streams beyond --max-concurrent-streams are refused; a zero window stalls only its stream", () =>
  withServer(async (k, port) => {
    // Settings say 0 bytes of window: the server may send headers but no DATA.
    const c = await RawH2.connect(port, [[Setting.INITIAL_WINDOW_SIZE, 0]]);
    await k.client.kv.put({ key: b("/big"), value: new Uint8Array(100_000).fill(7) });
    for (let i = 0; i < 10; i++) {
      await c.call(1 + 2 * i, "KV/Range", { key: b("/big") });
    }
    await c.call(21, "KV/Range", { key: b("/big") });
    await c.until(() => c.reset(21) !== undefined, 5000, "the 11th stream's refusal");
    assert.equal(c.reset(21), ErrorCode.REFUSED_STREAM);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(c.data.size, 0, "DATA sent into a zero window");
    await stillServes(k);
    // Opening the windows lets every response out whole.
    await c.windowUpdate(0, 2_000_000);
    for (let i = 0; i < 10; i++) await c.windowUpdate(1 + 2 * i, 200_000);
    await c.until(() => [...Array(10).keys()].every((i) => c.status(1 + 2 * i)), 5000, "all ten");
    const r = c.messages(1, "KV/Range")[0];
    assert.equal(r.kvs[0].value.length, 100_000);
    c.close();
  }, { maxConcurrentStreams: 10 }));

Deno.test("h2 abuse: compressed messages, unknown methods and deadlines get gRPC statuses", () =>
  withServer(async (_k, port) => {
    const c = await RawH2.connect(port);
    const msg = grpcMessage("KV/Range", { key: b("/a") });
    msg[0] = 1; // compressed flag
    await c.send(FrameType.HEADERS, Flag.END_HEADERS, 1, requestHeaders("KV/Range"));
    await c.send(FrameType.DATA, Flag.END_STREAM, 1, msg);
    await c.send(
      FrameType.HEADERS,
      Flag.END_HEADERS | Flag.END_STREAM,
      3,
      requestHeaders("KV/Range", [["grpc-encoding", "gzip"]]),
    );
    await c.send(
      FrameType.HEADERS,
      Flag.END_HEADERS | Flag.END_STREAM,
      5,
      encodeHeaders([
        [":method", "POST"],
        [":scheme", "http"],
        [":path", "/etcdserverpb.Nope/Get"],
        ["content-type", "application/grpc"],
      ]),
    );
    await c.send(
      FrameType.HEADERS,
      Flag.END_HEADERS,
      7,
      requestHeaders("Watch/Watch", [["grpc-timeout", "100m"]]),
    );
    await c.until(() => [1, 3, 5, 7].every((id) => c.status(id)), 5000, "four statuses");
    assert.equal(c.status(1)!.code, 12);
    assert.equal(c.status(3)!.code, 12);
    assert.match(c.status(3)!.message, /gzip/);
    assert.deepEqual(c.status(5), { code: 12, message: "unknown service etcdserverpb.Nope" });
    assert.equal(c.status(7)!.code, 4);
    c.close();
  }));

Deno.test("h2 abuse: a randomised frame fuzzer never takes the server down", () =>
  withServer(async (k, port) => {
    const seed = Number(Deno.env.get("H2_FUZZ_SEED") ?? Date.now() % 1_000_000);
    let state = seed;
    const rand = (n: number) => {
      state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
      return state % n;
    };
    const valid = requestHeaders("KV/Range");
    const deadline = Date.now() + 1500;
    let connections = 0;
    let frames = 0;
    while (Date.now() < deadline) {
      const c = await RawH2.connect(port);
      connections++;
      for (let i = 0; i < 50 && !c.closed; i++) {
        const type = rand(12);
        const flags = rand(256);
        const id = rand(4) === 0 ? 0 : 1 + rand(20);
        let payload: Uint8Array;
        if (type === FrameType.HEADERS && rand(2) === 0) payload = valid;
        else payload = Uint8Array.from({ length: rand(64) }, () => rand(256));
        await c.send(type, flags, id, payload);
        frames++;
      }
      c.close();
    }
    console.log(`fuzz seed ${seed}: ${frames} frames on ${connections} connections`);
    await stillServes(k);
  }));

function u32(n: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}
