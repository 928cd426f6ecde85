/**
 * gRPC over one HTTP/2 stream (the gRPC HTTP/2 protocol): length-prefixed
 * messages, `grpc-timeout` deadlines, `grpc-status`/`grpc-message` trailers,
 * identity encoding only, and call objects shaped like grpc-js's server calls
 * (`request`, `metadata`, `write`, `end`, `on("data"|"end"|"cancelled"|"drain")`,
 * `emit("error", {code, details})`), so service code written for grpc-js runs
 * unchanged.
 *
 * @module
 */
import { EventEmitter } from "node:events";
import { Buffer } from "node:buffer";
import { concat, type H2Stream } from "./connection.ts";
import { ErrorCode } from "./frame.ts";
import { encodeHeaders } from "./hpack.ts";
import { type Deadline, Deadlines } from "./deadlines.ts";

/** Every call's deadline: one timer per `grpc-timeout` (about the same ones share it), not per call. */
const deadlines = new Deadlines();

/** gRPC status codes. */
export const enum Status {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  RESOURCE_EXHAUSTED = 8,
  INTERNAL = 13,
  UNIMPLEMENTED = 12,
  UNAVAILABLE = 14,
}

/**
 * A serialized message: a byte array, or anything that copies itself (Range's
 * pages); `parts`, where it has them, are its bytes in order, never changed
 * once handed over.
 */
export interface Serialized {
  byteLength: number;
  copy(target: Uint8Array, targetStart: number): number;
  parts?: readonly Uint8Array[];
}

/**
 * A message in parts this large goes out as its parts (a list's pages of
 * ~0.5 MiB), each queued as DATA as it is: copying 50 MiB into one frame
 * buffer first cost a tenth of an unpaged list's CPU, and its page faults.
 */
const BY_PARTS = 256 * 1024;
/** Parts shorter than this are joined with their neighbours: each queued part ends a DATA frame. */
const SMALL_PART = 16 * 1024;

/** One method of a service definition, as lib/server/proto.ts builds it (@grpc/proto-loader's shape). */
export interface MethodDefinition {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(message: any): Serialized | Uint8Array;
}

/** An error a handler reports: grpc-js's `{code, details}`. */
export interface StatusObject {
  code: number;
  details?: string;
  message?: string;
}

/** Request metadata (custom headers), grpc-js style: values by lower-case key. */
export class Metadata {
  readonly #map = new Map<string, (string | Buffer)[]>();

  /** Values of `key` (binary `-bin` keys as Buffers). */
  get(key: string): (string | Buffer)[] {
    return this.#map.get(key.toLowerCase()) ?? [];
  }

  add(key: string, value: string | Buffer): void {
    key = key.toLowerCase();
    const values = this.#map.get(key);
    if (values) values.push(value);
    else this.#map.set(key, [value]);
  }

  set(key: string, value: string | Buffer): void {
    this.#map.set(key.toLowerCase(), [value]);
  }

  /** First value of every key. */
  getMap(): Record<string, string | Buffer> {
    const out: Record<string, string | Buffer> = {};
    for (const [k, v] of this.#map) out[k] = v[0];
    return out;
  }

  /** Every `[key, value]` pair, for sending. */
  entries(): [string, string][] {
    const out: [string, string][] = [];
    for (const [k, values] of this.#map) {
      for (const v of values) out.push([k, typeof v === "string" ? v : v.toString("base64")]);
    }
    return out;
  }
}

const RESPONSE_HEADERS: [string, string][] = [
  [":status", "200"],
  ["content-type", "application/grpc"],
];
const HEADERS_BLOCK = encodeHeaders(RESPONSE_HEADERS);
const OK_TRAILERS = encodeHeaders([["grpc-status", "0"]]);
/** Headers a gRPC server never passes on as metadata. */
const RESERVED = new Set([
  "content-type",
  "te",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding",
  "user-agent",
  "host",
]);

/** `grpc-message` is percent-encoded (gRPC HTTP/2 protocol, "Responses"). */
function percentEncode(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Milliseconds of a `grpc-timeout` value, or undefined if malformed. */
export function parseTimeout(value: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 }[m[2]]!;
  return n * unit;
}

/** What the server passes to each call about its connection. */
export interface CallContext {
  peer: string;
  maxReceiveMessageLength: number;
  /** The client certificate the TLS handshake verified, if any. */
  peerCertificate?: { subject?: Record<string, unknown> };
}

/**
 * A server call of any shape. Handlers see it as grpc-js's ServerUnaryCall,
 * ServerWritableStream, ServerReadableStream or ServerDuplexStream.
 */
export class ServerCall extends EventEmitter {
  request: unknown = undefined;
  readonly metadata = new Metadata();
  cancelled = false;
  readonly #stream: H2Stream;
  readonly #method: MethodDefinition;
  readonly #ctx: CallContext;
  #authority = "";
  #path = "";
  #deadline = Infinity;
  #timer?: Deadline;
  #done = false;
  /** Received bytes not yet forming a whole message. */
  #parts: Uint8Array[] = [];
  #partBytes = 0;
  #readPaused = false;
  #readQueue: unknown[] = [];
  #endedByClient = false;

  constructor(stream: H2Stream, method: MethodDefinition, ctx: CallContext) {
    super();
    this.#stream = stream;
    this.#method = method;
    this.#ctx = ctx;
    // A handler emitting "error" ends the call with that status (grpc-js does the same).
    this.on("error", (err: StatusObject) => this.sendStatus(err));
    stream.onDrain = () => {
      if (this.#cutOffArmed === false) this.enableCutOff();
      this.emit("drain");
    };
  }

  /** Undefined: never cut off; false: told once, re-armed when the stream drains. */
  #cutOffArmed?: boolean;

  /**
   * Lets the connection pick this call when it holds more unread bytes than
   * its budget: the call then emits "overBudget" (once until it drains).
   */
  enableCutOff(): void {
    this.#cutOffArmed = true;
    this.#stream.onOverBudget = () => {
      this.#cutOffArmed = false;
      this.emit("overBudget");
    };
  }

  /** Bytes of this call's responses not yet flushed to the socket. */
  get queuedBytes(): number {
    return this.#stream.queuedBytes;
  }

  /** Applies the request headers; returns a status to refuse the call with, if any. */
  init(headers: [string, string][]): StatusObject | undefined {
    for (const [name, value] of headers) {
      if (name === ":path") this.#path = value;
      else if (name === ":authority") this.#authority = value;
      else if (name === "grpc-timeout") {
        const ms = parseTimeout(value);
        if (ms === undefined) {
          return { code: Status.INTERNAL, details: `malformed grpc-timeout: ${value}` };
        }
        this.#deadline = Date.now() + ms;
        this.#timer = deadlines.add(ms, () => this.#expire());
      } else if (name === "grpc-encoding") {
        if (value !== "identity") {
          return {
            code: Status.UNIMPLEMENTED,
            details: `grpc: Decompressor is not installed for grpc-encoding "${value}"`,
          };
        }
      } else if (name === "host" && !this.#authority) {
        this.#authority = value;
      } else if (name[0] !== ":" && !RESERVED.has(name)) {
        this.metadata.add(
          name,
          name.endsWith("-bin") ? Buffer.from(value, "base64") : value,
        );
      }
    }
    return undefined;
  }

  getPath(): string {
    return this.#path;
  }

  /** The request's `:authority`. */
  getHost(): string {
    return this.#authority;
  }

  getPeer(): string {
    return this.#ctx.peer;
  }

  /** As grpc-js: the verified client certificate of a TLS connection (for common-name users). */
  getAuthContext(): { sslPeerCertificate?: { subject?: Record<string, unknown> } } {
    return { sslPeerCertificate: this.#ctx.peerCertificate };
  }

  getDeadline(): number {
    return this.#deadline;
  }

  /** Sends response headers with custom metadata now (otherwise they go with the first message). */
  sendMetadata(metadata: Metadata): void {
    if (this.#stream.headersSent || this.#done) return;
    this.#stream.respond(encodeHeaders([...RESPONSE_HEADERS, ...metadata.entries()]));
  }

  /** Sends one message; false when the stream has much queued (wait for "drain"). */
  write(message: unknown): boolean {
    if (this.#done) return false;
    const serialized = this.#method.responseSerialize(message);
    const len = serialized.byteLength;
    const parts = (serialized as Serialized).parts;
    if (parts !== undefined && len >= BY_PARTS) {
      if (!this.#stream.headersSent) this.#stream.respond(HEADERS_BLOCK);
      return this.#writeParts(messagePrefix(new Uint8Array(5), len), parts);
    }
    const frame = messagePrefix(new Uint8Array(5 + len), len);
    if (serialized instanceof Uint8Array) frame.set(serialized, 5);
    else serialized.copy(frame, 5);
    if (!this.#stream.headersSent) this.#stream.respond(HEADERS_BLOCK);
    return this.#stream.write(frame);
  }

  /** Queues the message prefix and `parts`: large parts as they are, runs of short ones joined. */
  #writeParts(prefix: Uint8Array, parts: readonly Uint8Array[]): boolean {
    let run: Uint8Array[] = [prefix];
    let runBytes = prefix.length;
    let below = true;
    const writeRun = () => {
      if (run.length === 0) return;
      below = this.#stream.write(run.length === 1 ? run[0] : concat(run, runBytes));
      run = [];
      runBytes = 0;
    };
    for (const part of parts) {
      if (part.length < SMALL_PART) {
        run.push(part);
        runBytes += part.length;
        continue;
      }
      writeRun();
      below = this.#stream.write(part);
    }
    writeRun();
    return below;
  }

  /** Ends the call with status OK. */
  end(): void {
    this.sendStatus({ code: Status.OK });
  }

  /** Ends the call with `status` (trailers; trailers-only when nothing was sent). */
  sendStatus(status: StatusObject): void {
    if (this.#done) return;
    this.#done = true;
    this.#timer?.cancel();
    const code = status.code ?? Status.UNKNOWN;
    if (code === Status.OK && this.#stream.headersSent) {
      this.#stream.end(OK_TRAILERS);
      return;
    }
    const trailers: [string, string][] = [["grpc-status", String(code)]];
    const details = status.details ?? status.message ?? "";
    if (details) trailers.push(["grpc-message", percentEncode(details)]);
    if (this.#stream.headersSent) this.#stream.end(encodeHeaders(trailers));
    else this.#stream.respond(encodeHeaders([...RESPONSE_HEADERS, ...trailers]), true);
  }

  /** grpc-js duplex calls can pause reading; messages wait until `resume()`. */
  pause(): this {
    this.#readPaused = true;
    return this;
  }

  resume(): this {
    this.#readPaused = false;
    while (!this.#readPaused && this.#readQueue.length > 0) {
      this.emit("data", this.#readQueue.shift());
    }
    if (!this.#readPaused && this.#endedByClient) this.emit("end");
    return this;
  }

  #expire(): void {
    if (this.#done) return;
    this.#cancel();
    this.sendStatus({ code: Status.DEADLINE_EXCEEDED, details: "context deadline exceeded" });
  }

  /** The client went away or reset the stream. */
  abort(): void {
    if (this.#done) return;
    this.#done = true;
    this.#timer?.cancel();
    this.#cancel();
  }

  #cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit("cancelled");
  }

  /**
   * Feeds received bytes; returns the whole messages they complete, or throws
   * a status for a compressed or oversized message.
   */
  readMessages(data: Uint8Array): unknown[] {
    this.#parts.push(data);
    this.#partBytes += data.length;
    const out: unknown[] = [];
    while (this.#partBytes >= 5) {
      const head = this.#peek(5);
      if (head[0] !== 0) {
        throw {
          code: Status.UNIMPLEMENTED,
          details: "grpc: compressed messages are not supported (identity encoding only)",
        } as StatusObject;
      }
      const len = ((head[1] << 24) >>> 0) + (head[2] << 16) + (head[3] << 8) + head[4];
      if (len > this.#ctx.maxReceiveMessageLength) {
        throw {
          code: Status.RESOURCE_EXHAUSTED,
          details:
            `grpc: received message larger than max (${len} vs. ${this.#ctx.maxReceiveMessageLength})`,
        } as StatusObject;
      }
      if (this.#partBytes < 5 + len) break;
      const bytes = this.#take(5 + len).subarray(5);
      try {
        out.push(this.#method.requestDeserialize(Buffer.from(bytes.buffer, bytes.byteOffset, len)));
      } catch (err) {
        throw {
          code: Status.INVALID_ARGUMENT,
          details: `grpc: error unmarshalling request: ${(err as Error).message}`,
        } as StatusObject;
      }
    }
    return out;
  }

  /** Delivers messages to a streaming handler ("data"), honouring pause(). */
  deliver(messages: unknown[]): void {
    for (const m of messages) {
      if (this.#readPaused || this.#readQueue.length > 0) this.#readQueue.push(m);
      else this.emit("data", m);
    }
  }

  /** The client half-closed a streaming call. */
  clientEnded(): void {
    this.#endedByClient = true;
    if (!this.#readPaused && this.#readQueue.length === 0) this.emit("end");
  }

  /** The first 5 bytes (the message prefix), joined across parts when needed. */
  #peek(n: number): Uint8Array {
    const first = this.#parts[0];
    if (first.length >= n) return first;
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of this.#parts) {
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (at === n) break;
    }
    return out;
  }

  /** Removes the first `n` bytes. */
  #take(n: number): Uint8Array {
    this.#partBytes -= n;
    const first = this.#parts[0];
    if (first.length >= n) {
      if (first.length === n) this.#parts.shift();
      else this.#parts[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.#parts[0];
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (k === p.length) this.#parts.shift();
      else this.#parts[0] = p.subarray(k);
    }
    return out;
  }

  /** Resets the underlying stream (used when the call cannot continue). */
  reset(): void {
    this.#stream.reset(ErrorCode.CANCEL);
  }
}

/** Writes the 5-byte gRPC message prefix (not compressed, `len` bytes) at the start of `frame`. */
function messagePrefix(frame: Uint8Array, len: number): Uint8Array {
  frame[1] = len >>> 24;
  frame[2] = (len >>> 16) & 0xff;
  frame[3] = (len >>> 8) & 0xff;
  frame[4] = len & 0xff;
  return frame;
}
