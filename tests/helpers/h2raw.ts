/**
 * A raw HTTP/2 client for tests that must do what well-behaved clients never
 * do: send exact frames (malformed, floods, resets), withhold WINDOW_UPDATE,
 * and see every frame the server answers with.
 */
import { Buffer } from "node:buffer";
import {
  Flag,
  frame,
  FrameType,
  PREFACE,
  read31,
  read32,
  settingsFrame,
  windowUpdateFrame,
} from "../../lib/server/h2/frame.ts";
import { encodeHeaders, HpackDecoder } from "../../lib/server/h2/hpack.ts";
import { loadProtoFile } from "../../lib/server/client_protos.ts";

export interface RawFrame {
  type: number;
  flags: number;
  streamId: number;
  payload: Uint8Array;
}

const defs: Record<string, any> = {
  ...loadProtoFile("etcd.proto"),
  ...loadProtoFile("health.proto"),
};

/** etcd method definitions (path, serializers) by `Service/Method`, e.g. `KV/Put`. */
export function method(name: string): any {
  const [service, m] = name.split("/");
  return (defs[`etcdserverpb.${service}`] ?? defs[`grpc.health.v1.${service}`])[m];
}

/** One gRPC message frame (5-byte prefix) of `request` for `name`. */
export function grpcMessage(name: string, request: unknown): Uint8Array {
  const body: Buffer = method(name).requestSerialize(request);
  const out = new Uint8Array(5 + body.length);
  new DataView(out.buffer).setUint32(1, body.length);
  out.set(body, 5);
  return out;
}

/** The request header block of a gRPC call to `name` (`KV/Put`, …). */
export function requestHeaders(name: string, extra: [string, string][] = []): Uint8Array {
  const path = method(name).path;
  return encodeHeaders([
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "localhost"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ]);
}

/** A raw connection: frames out, every frame in (`frames`), decoded headers per stream. */
export class RawH2 {
  readonly frames: RawFrame[] = [];
  readonly headers = new Map<number, [string, string][][]>();
  readonly data = new Map<number, Uint8Array[]>();
  closed = false;
  readonly #conn: Deno.Conn;
  readonly #decoder = new HpackDecoder();
  #waiters: (() => void)[] = [];
  readonly done: Promise<void>;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.done = this.#read();
  }

  /** Connects to `127.0.0.1:port`; sends the preface and SETTINGS unless `handshake` is false. */
  static async connect(
    port: number,
    settings: [number, number][] = [],
    handshake = true,
  ): Promise<RawH2> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const c = new RawH2(conn);
    if (handshake) {
      await c.write(PREFACE);
      await c.write(settingsFrame(settings));
    }
    return c;
  }

  async write(bytes: Uint8Array): Promise<void> {
    try {
      let at = 0;
      while (at < bytes.length) at += await this.#conn.write(bytes.subarray(at));
    } catch {
      this.closed = true;
    }
  }

  /** Sends a frame. */
  send(type: number, flags: number, streamId: number, payload?: Uint8Array): Promise<void> {
    return this.write(frame(type, flags, streamId, payload));
  }

  /** Starts a gRPC call on `streamId` with one request message; `end` half-closes. */
  async call(streamId: number, name: string, request: unknown, end = true): Promise<void> {
    await this.send(FrameType.HEADERS, Flag.END_HEADERS, streamId, requestHeaders(name));
    await this.send(
      FrameType.DATA,
      end ? Flag.END_STREAM : 0,
      streamId,
      grpcMessage(name, request),
    );
  }

  windowUpdate(streamId: number, increment: number): Promise<void> {
    return this.write(windowUpdateFrame(streamId, increment));
  }

  async #read(): Promise<void> {
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        const next = new Uint8Array(buf.length + n);
        next.set(buf);
        next.set(chunk.subarray(0, n), buf.length);
        buf = next;
        let p = 0;
        while (buf.length - p >= 9) {
          const len = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
          if (buf.length - p < 9 + len) break;
          const f: RawFrame = {
            type: buf[p + 3],
            flags: buf[p + 4],
            streamId: read31(buf, p + 5),
            payload: buf.slice(p + 9, p + 9 + len),
          };
          p += 9 + len;
          this.#onFrame(f);
        }
        buf = buf.slice(p);
        for (const w of this.#waiters.splice(0)) w();
      }
    } catch {
      // reset by the server: closed below
    }
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }

  #onFrame(f: RawFrame): void {
    this.frames.push(f);
    if (f.type === FrameType.HEADERS) {
      const list = this.headers.get(f.streamId) ?? [];
      list.push(this.#decoder.decode(f.payload, 1 << 20));
      this.headers.set(f.streamId, list);
    } else if (f.type === FrameType.DATA) {
      const list = this.data.get(f.streamId) ?? [];
      list.push(f.payload);
      this.data.set(f.streamId, list);
    }
  }

  /** Waits until `pred` holds (checked after each read), or throws after `ms`. */
  async until(pred: () => boolean, ms = 5000, what = "condition"): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (this.closed) {
        if (pred()) return;
        throw new Error(`connection closed while waiting for ${what}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The first GOAWAY's error code, if any. */
  goaway(): number | undefined {
    const f = this.frames.find((f) => f.type === FrameType.GOAWAY);
    return f ? read32(f.payload, 4) : undefined;
  }

  /** RST_STREAM error code for `streamId`, if any. */
  reset(streamId: number): number | undefined {
    const f = this.frames.find((f) => f.type === FrameType.RST_STREAM && f.streamId === streamId);
    return f ? read32(f.payload, 0) : undefined;
  }

  /** grpc-status of a stream's trailers, if it ended. */
  status(streamId: number): { code: number; message: string } | undefined {
    for (const h of this.headers.get(streamId) ?? []) {
      const s = h.find(([n]) => n === "grpc-status");
      if (s) {
        const m = h.find(([n]) => n === "grpc-message")?.[1] ?? "";
        return { code: Number(s[1]), message: decodeURIComponent(m) };
      }
    }
    return undefined;
  }

  /** The gRPC messages received on `streamId`, decoded as responses of `name` (parsed once). */
  messages(streamId: number, name: string): any[] {
    const parts = this.data.get(streamId) ?? [];
    const state = this.#parsed.get(streamId) ?? { parts: 0, tail: new Uint8Array(0), out: [] };
    this.#parsed.set(streamId, state);
    if (state.parts === parts.length) return state.out;
    const fresh = parts.slice(state.parts);
    state.parts = parts.length;
    const all = new Uint8Array(state.tail.length + fresh.reduce((n, p) => n + p.length, 0));
    all.set(state.tail);
    let at = state.tail.length;
    for (const p of fresh) {
      all.set(p, at);
      at += p.length;
    }
    const m = method(name);
    let p = 0;
    while (p + 5 <= all.length) {
      const len = new DataView(all.buffer, all.byteOffset).getUint32(p + 1);
      if (p + 5 + len > all.length) break;
      state.out.push(m.responseDeserialize(Buffer.from(all.subarray(p + 5, p + 5 + len))));
      p += 5 + len;
    }
    state.tail = all.slice(p);
    return state.out;
  }

  readonly #parsed = new Map<number, { parts: number; tail: Uint8Array; out: any[] }>();

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
