/**
 * One server-side HTTP/2 connection (RFC 9113): preface and SETTINGS, stream
 * states, HPACK-decoded request headers, flow control in both directions,
 * PING with etcd's keepalive policy, RST_STREAM, GOAWAY, and the limits that
 * keep an abusive peer from taking memory or time from the others.
 *
 * All frames produced during one event-loop turn go out in one socket write.
 *
 * @module
 */
import { setImmediate } from "node:timers";
import {
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_SIZE,
  FrameType,
  goawayFrame,
  MAX_WINDOW,
  pingFrame,
  PREFACE,
  read31,
  read32,
  rstStreamFrame,
  Setting,
  SETTINGS_ACK,
  settingsFrame,
  windowUpdateFrame,
  writeFrameHeader,
} from "./frame.ts";
import { HeaderListTooLarge, HpackDecoder } from "./hpack.ts";
import { releaseWriteBuffer, takeWriteBuffer } from "./write_buffers.ts";

/** The socket surface the connection needs (`node:net`/`node:tls` sockets have it). */
export interface Transport {
  write(data: Uint8Array, cb?: (err?: Error | null) => void): boolean;
  end(): void;
  destroy(): void;
  on(event: "data", fn: (chunk: Uint8Array) => void): unknown;
  on(event: "close", fn: () => void): unknown;
  on(event: "error", fn: (err: Error) => void): unknown;
  readonly writableLength: number;
}

/** Limits and timers of a connection; every field has a default. */
export interface ConnectionSettings {
  /** SETTINGS_MAX_CONCURRENT_STREAMS we announce and enforce (etcd: `--max-concurrent-streams`). */
  maxConcurrentStreams: number;
  /** SETTINGS_INITIAL_WINDOW_SIZE we announce: what a client may send per stream unread. */
  initialWindowSize: number;
  /** Connection-level receive window. */
  connectionWindowSize: number;
  /** SETTINGS_MAX_FRAME_SIZE we announce. */
  maxFrameSize: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce. */
  maxHeaderListSize: number;
  /** SETTINGS_HEADER_TABLE_SIZE we announce (our decoder's dynamic table). */
  headerTableSize: number;
  /** Idle time after which the server pings the client (etcd `--grpc-keepalive-interval`), ms. */
  keepaliveInterval: number;
  /** How long a keepalive ping may go unanswered (etcd `--grpc-keepalive-timeout`), ms. */
  keepaliveTimeout: number;
  /** Minimum interval between client pings (etcd `--grpc-keepalive-min-time`), ms. */
  keepaliveMinTime: number;
  /** Bytes queued for the peer (all streams) before the largest cut-off-able stream is told. */
  maxQueuedBytes: number;
  /** How long a stream must have had nothing let through before the budget may cut it, ms. */
  stallTimeout: number;
  /** Streams the client may reset per second before the connection is closed (CVE-2023-44487). */
  maxResetsPerSecond: number;
}

export const DEFAULT_SETTINGS: ConnectionSettings = {
  maxConcurrentStreams: 2 ** 32 - 1,
  initialWindowSize: 1 << 20,
  connectionWindowSize: 16 << 20,
  maxFrameSize: DEFAULT_MAX_FRAME_SIZE,
  maxHeaderListSize: 16 << 10,
  headerTableSize: 4096,
  keepaliveInterval: 2 * 60 * 60 * 1000,
  keepaliveTimeout: 20_000,
  keepaliveMinTime: 5_000,
  maxQueuedBytes: 64 << 20,
  stallTimeout: 2_000,
  maxResetsPerSecond: 1_000,
};

/** grpc-go: pings earlier than the policy allows, tolerated before GOAWAY. */
const MAX_PING_STRIKES = 2;
/** grpc-go: without active streams a client may ping once per two hours. */
const PING_WITHOUT_STREAMS = 2 * 60 * 60 * 1000;
/** A header block (HEADERS + CONTINUATION) larger than this ends the connection. */
const MAX_HEADER_BLOCK_FACTOR = 2;
/** Unflushed acknowledgements (PING/SETTINGS) a peer may cause before we stop listening. */
const MAX_PENDING_ACKS = 1_000;
/** Socket buffer above which no more DATA is handed to the socket until it drains. */
const SOCKET_HIGH_WATER = 1 << 20;
/**
 * A stream progresses when its client takes this many bytes: one that lets a
 * trickle through (a paused reader's library may) still counts as stalled.
 */
const PROGRESS_BYTES = 256 << 10;
/** A connection holding this many times its budget cuts off even a stream that progresses. */
const HARD_BUDGET_FACTOR = 4;
/** A stream's `write()` reports back-pressure above this many queued bytes. */
export const STREAM_HIGH_WATER = 1 << 20;

/** What the connection tells the layer above about a new request stream. */
export type StreamListener = (stream: H2Stream, headers: [string, string][]) => void;

class ConnectionError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

class StreamError extends Error {
  constructor(readonly streamId: number, readonly code: ErrorCode, message: string) {
    super(message);
  }
}

/** A request stream as the gRPC layer sees it. */
export class H2Stream {
  /** Called with each DATA payload (padding removed). */
  onData: (data: Uint8Array) => void = () => {};
  /** Called when the client half-closes (END_STREAM). */
  onEnd: () => void = () => {};
  /** Called once when the stream ends before the server closed it (RST_STREAM, connection loss). */
  onAbort: (code: ErrorCode) => void = () => {};
  /** Called when queued bytes fall below the high-water mark again. */
  onDrain: () => void = () => {};
  /** Set by streams whose responses may be cut off when the connection's budget is spent. */
  onOverBudget?: () => void;

  /** Bytes the peer lets us send on this stream. */
  sendWindow: number;
  /** Bytes the peer may still send us on this stream before a WINDOW_UPDATE. */
  recvWindow: number;
  /** Bytes received and handed up since the last stream WINDOW_UPDATE. */
  recvConsumed = 0;
  remoteEnded = false;
  /** The server sent END_STREAM (or reset the stream). */
  localEnded = false;
  headersSent = false;
  /** DATA waiting for window: whole payloads, the first one partly sent (`sentOfHead`). */
  pending: Uint8Array[] = [];
  sentOfHead = 0;
  /** Bytes in `pending` not yet framed. */
  pendingBytes = 0;
  /** Bytes framed and handed to the socket but not yet flushed by it. */
  inSocket = 0;
  /** Trailers waiting for the pending DATA. */
  trailers?: Uint8Array;
  wasOverHighWater = false;
  /** When the peer last took another {@link PROGRESS_BYTES} of this stream (or it opened). */
  lastProgressAt = Date.now();
  takenSinceProgress = 0;

  constructor(readonly id: number, readonly connection: Http2Connection, sendWindow: number) {
    this.sendWindow = sendWindow;
    this.recvWindow = connection.settings.initialWindowSize;
  }

  /** Bytes of this stream's responses not yet flushed to the socket. */
  get queuedBytes(): number {
    return this.pendingBytes + this.inSocket;
  }

  /** Sends the response HEADERS (an encoded block). */
  respond(block: Uint8Array, endStream = false): void {
    if (this.localEnded) return;
    this.headersSent = true;
    if (endStream) this.localEnded = true;
    this.connection.sendHeaders(this, block, endStream);
  }

  /** Queues a DATA payload; returns false once the stream has a lot queued. */
  write(data: Uint8Array): boolean {
    if (this.localEnded) return false;
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.connection.dataQueued(this, data.length);
    const below = this.queuedBytes < STREAM_HIGH_WATER;
    if (!below) this.wasOverHighWater = true;
    return below;
  }

  /** Ends the stream with trailers, after the queued DATA. */
  end(block: Uint8Array): void {
    if (this.localEnded) return;
    this.localEnded = true;
    if (this.pendingBytes === 0) this.connection.sendHeaders(this, block, true);
    else this.trailers = block;
  }

  /** Resets the stream (RST_STREAM) and drops what is queued. */
  reset(code: ErrorCode): void {
    this.connection.resetStream(this, code, false);
  }
}

/** Serves one HTTP/2 connection on `transport`. */
export class Http2Connection {
  readonly settings: ConnectionSettings;
  readonly #transport: Transport;
  readonly #onStream: StreamListener;
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, H2Stream>();
  /** Streams with DATA waiting, in the order they queued it. */
  readonly #sendable = new Set<H2Stream>();

  #input: Uint8Array = new Uint8Array(0);
  #prefaceSeen = false;
  #settingsSeen = false;
  #closed = false;
  #goingAway = false;
  #lastStreamId = 0;

  // Peer settings.
  #peerInitialWindow = DEFAULT_WINDOW;
  #peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  #sendWindow = DEFAULT_WINDOW;
  #recvWindow = DEFAULT_WINDOW;
  #recvConsumed = 0;

  // Header block being assembled from HEADERS + CONTINUATION.
  #blockStream = 0;
  #blockFlags = 0;
  #blockParts: Uint8Array[] = [];
  #blockBytes = 0;

  // Output.
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  /** Per written batch: streams and bytes of their DATA in it, for flush accounting. */
  #pendingAcks = 0;
  #totalQueued = 0;

  // Keepalive and abuse accounting.
  #lastPingAt = 0;
  #pingStrikes = 0;
  #resetPingStrikes = false;
  #lastReadAt = Date.now();
  #keepaliveTimer?: ReturnType<typeof setTimeout>;
  #keepalivePending = false;
  #resetWindowStart = 0;
  #resetsInWindow = 0;
  #onClose: (() => void)[] = [];

  constructor(
    transport: Transport,
    settings: Partial<ConnectionSettings>,
    onStream: StreamListener,
  ) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.#transport = transport;
    this.#onStream = onStream;
    this.#decoder = new HpackDecoder(this.settings.headerTableSize);
    transport.on("data", (chunk) => this.#receive(chunk));
    transport.on("close", () => this.#teardown());
    transport.on("error", () => this.#teardown());
    const s = this.settings;
    this.#queue(settingsFrame([
      [Setting.MAX_CONCURRENT_STREAMS, Math.min(s.maxConcurrentStreams, 2 ** 32 - 1)],
      [Setting.INITIAL_WINDOW_SIZE, s.initialWindowSize],
      [Setting.MAX_FRAME_SIZE, s.maxFrameSize],
      [Setting.MAX_HEADER_LIST_SIZE, s.maxHeaderListSize],
      [Setting.HEADER_TABLE_SIZE, s.headerTableSize],
      [Setting.ENABLE_PUSH, 0],
    ]));
    if (s.connectionWindowSize > DEFAULT_WINDOW) {
      this.#queue(windowUpdateFrame(0, s.connectionWindowSize - DEFAULT_WINDOW));
      this.#recvWindow = s.connectionWindowSize;
    }
    this.#armKeepalive();
  }

  /** Number of open streams. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Registers a callback for when the connection is gone. */
  onClose(fn: () => void): void {
    if (this.#closed) fn();
    else this.#onClose.push(fn);
  }

  /**
   * Graceful shutdown: GOAWAY with the last stream id, no new streams; the
   * connection closes once its streams are done (or when `close()` is called).
   */
  shutdown(): void {
    if (this.#closed || this.#goingAway) return;
    this.#goingAway = true;
    this.#queue(goawayFrame(this.#lastStreamId, ErrorCode.NO_ERROR));
    this.#maybeFinish();
  }

  /**
   * Ends the connection now: what is queued (a GOAWAY, say) is still written,
   * and the socket is destroyed a moment later if the peer does not close it
   * (destroying at once could discard the GOAWAY with a TCP reset).
   */
  close(): void {
    if (this.#closed) return;
    this.#flushNow();
    this.#transport.end();
    this.#teardown(false);
    const t = setTimeout(() => this.#transport.destroy(), 1000);
    Deno.unrefTimer(t as unknown as number);
  }

  // ---- output ------------------------------------------------------------

  #queue(frame: Uint8Array): void {
    this.#out.push(frame);
    this.#outBytes += frame.length;
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#closed) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.#flushNow();
    });
  }

  /** Frames what the windows allow, then writes everything queued in one write. */
  #flushNow(): void {
    if (this.#closed) return;
    const accounted: H2Stream[] = [];
    const bytes: number[] = [];
    this.#pumpData(accounted, bytes);
    if (this.#out.length === 0) return;
    const pooled = this.#out.length > 1 ? takeWriteBuffer(this.#outBytes) : undefined;
    const chunk = pooled
      ? joinInto(pooled, this.#out, this.#outBytes)
      : this.#out.length === 1
      ? this.#out[0]
      : concat(this.#out, this.#outBytes);
    this.#out = [];
    this.#outBytes = 0;
    const acks = this.#pendingAcks;
    this.#pendingAcks = 0;
    this.#transport.write(chunk, (err) => {
      // Reused only once the socket is done with it; after an error it may still hold it.
      if (pooled && !err) releaseWriteBuffer(pooled);
      this.#flushed(accounted, bytes, acks);
    });
  }

  #ackBacklog = 0;

  #flushed(streams: H2Stream[], bytes: number[], acks: number): void {
    this.#ackBacklog -= acks;
    if (this.#sendable.size > 0) this.#scheduleFlush();
    for (let i = 0; i < streams.length; i++) {
      const s = streams[i];
      s.inSocket -= bytes[i];
      this.#totalQueued -= bytes[i];
      if (s.wasOverHighWater && s.queuedBytes < STREAM_HIGH_WATER / 2 && !s.localEnded) {
        s.wasOverHighWater = false;
        s.onDrain();
      }
    }
  }

  /** Moves queued DATA into frames as far as the connection and stream windows allow. */
  #pumpData(accounted: H2Stream[], bytes: number[]): void {
    // The socket still holds a lot: DATA waits (its write callback pumps again).
    if (this.#transport.writableLength > SOCKET_HIGH_WATER) return;
    const maxFrame = this.#peerMaxFrameSize;
    for (const s of this.#sendable) {
      if (this.#sendWindow <= 0) break;
      let moved = 0;
      while (s.pending.length > 0 && s.sendWindow > 0 && this.#sendWindow > 0) {
        const head = s.pending[0];
        const left = head.length - s.sentOfHead;
        const n = Math.min(left, maxFrame, s.sendWindow, this.#sendWindow);
        const header = new Uint8Array(FRAME_HEADER_SIZE);
        writeFrameHeader(header, 0, n, FrameType.DATA, 0, s.id);
        const body = s.sentOfHead === 0 && n === head.length
          ? head
          : head.subarray(s.sentOfHead, s.sentOfHead + n);
        this.#out.push(header, body);
        this.#outBytes += FRAME_HEADER_SIZE + n;
        s.sendWindow -= n;
        this.#sendWindow -= n;
        s.pendingBytes -= n;
        moved += n;
        s.sentOfHead += n;
        if (s.sentOfHead === head.length) {
          s.pending.shift();
          s.sentOfHead = 0;
        }
        if (this.#outBytes > SOCKET_HIGH_WATER) break;
      }
      if (moved > 0) {
        s.takenSinceProgress += moved;
        if (s.takenSinceProgress >= PROGRESS_BYTES) {
          s.lastProgressAt = Date.now();
          s.takenSinceProgress = 0;
        }
        s.inSocket += moved;
        accounted.push(s);
        bytes.push(moved);
        this.#resetPingStrikes = true;
      }
      if (s.pending.length === 0) {
        this.#sendable.delete(s);
        if (s.trailers) {
          const t = s.trailers;
          s.trailers = undefined;
          this.#headersFrames(s.id, t, true);
          this.#retire(s);
        }
      }
      if (this.#outBytes > SOCKET_HIGH_WATER) {
        this.#scheduleFlush();
        break;
      }
    }
  }

  /** Called by a stream when it queues DATA. */
  dataQueued(s: H2Stream, n: number): void {
    this.#sendable.add(s);
    this.#totalQueued += n;
    this.#scheduleFlush();
    if (this.#totalQueued > this.settings.maxQueuedBytes) this.#overBudget();
  }

  /**
   * The connection holds more than its budget. The cut-off-able stream
   * holding most, among those whose client has taken less than
   * {@link PROGRESS_BYTES} of them within `stallTimeout`, is told; a client
   * that reads, however far behind, is not, until the connection holds
   * {@link HARD_BUDGET_FACTOR} times its budget, when the stream holding most
   * is told whatever its progress.
   * If none has stalled long enough yet, this looks again when one would have.
   */
  #overBudget(): void {
    const now = Date.now();
    const stall = this.settings.stallTimeout;
    const hard = this.#totalQueued > HARD_BUDGET_FACTOR * this.settings.maxQueuedBytes;
    let worst: H2Stream | undefined;
    let soonest = Infinity;
    for (const s of this.#streams.values()) {
      if (!s.onOverBudget || s.pendingBytes === 0) continue;
      const idle = now - s.lastProgressAt;
      if (idle < stall && !hard) soonest = Math.min(soonest, stall - idle);
      else if (!worst || s.queuedBytes > worst.queuedBytes) worst = s;
    }
    if (worst) {
      const cut = worst.onOverBudget!;
      worst.onOverBudget = undefined;
      cut();
    } else if (soonest < Infinity && !this.#budgetTimer) {
      this.#budgetTimer = setTimeout(() => {
        this.#budgetTimer = undefined;
        if (!this.#closed && this.#totalQueued > this.settings.maxQueuedBytes) this.#overBudget();
      }, soonest);
    }
  }

  #budgetTimer?: ReturnType<typeof setTimeout>;

  sendHeaders(s: H2Stream, block: Uint8Array, endStream: boolean): void {
    this.#resetPingStrikes = true;
    if (endStream && s.pendingBytes > 0) {
      s.trailers = block;
      return;
    }
    this.#headersFrames(s.id, block, endStream);
    if (endStream) this.#retire(s);
  }

  /** HEADERS (+ CONTINUATION when the block is larger than a frame). */
  #headersFrames(id: number, block: Uint8Array, endStream: boolean): void {
    const max = this.#peerMaxFrameSize;
    let at = 0;
    let first = true;
    do {
      const n = Math.min(max, block.length - at);
      const last = at + n >= block.length;
      const type = first ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flag.END_HEADERS : 0) | (first && endStream ? Flag.END_STREAM : 0);
      const f = new Uint8Array(FRAME_HEADER_SIZE + n);
      writeFrameHeader(f, 0, n, type, flags, id);
      f.set(block.subarray(at, at + n), FRAME_HEADER_SIZE);
      this.#out.push(f);
      this.#outBytes += f.length;
      at += n;
      first = false;
    } while (at < block.length);
    this.#scheduleFlush();
  }

  /** The server finished a stream: it is closed once the client has ended too. */
  #retire(s: H2Stream): void {
    if (s.remoteEnded) this.#forget(s);
    else {
      // A client still sending after our END_STREAM gets told to stop (RFC 9113 §8.1).
      this.#queue(rstStreamFrame(s.id, ErrorCode.NO_ERROR));
      this.#forget(s);
    }
  }

  #forget(s: H2Stream): void {
    if (this.#streams.get(s.id) !== s) return;
    this.#streams.delete(s.id);
    this.#maybeFinish();
  }

  resetStream(s: H2Stream, code: ErrorCode, byPeer: boolean): void {
    if (this.#streams.get(s.id) !== s) return;
    this.#totalQueued -= s.pendingBytes;
    s.pending = [];
    s.pendingBytes = 0;
    s.trailers = undefined;
    this.#sendable.delete(s);
    const aborted = !s.localEnded;
    s.localEnded = true;
    if (!byPeer) this.#queue(rstStreamFrame(s.id, code));
    this.#streams.delete(s.id);
    if (aborted) s.onAbort(code);
    this.#maybeFinish();
  }

  #maybeFinish(): void {
    if (this.#goingAway && this.#streams.size === 0) this.close();
  }

  #teardown(destroy = true): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#keepaliveTimer);
    clearTimeout(this.#budgetTimer);
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#sendable.clear();
    for (const s of streams) {
      if (!s.localEnded) {
        s.localEnded = true;
        s.onAbort(ErrorCode.CANCEL);
      }
    }
    for (const fn of this.#onClose) fn();
    this.#onClose = [];
    if (destroy) this.#transport.destroy();
  }

  #connectionError(e: ConnectionError): void {
    if (this.#closed) return;
    this.#out = [];
    this.#outBytes = 0;
    this.#queue(goawayFrame(this.#lastStreamId, e.code, e.message));
    this.close();
  }

  // ---- keepalive -----------------------------------------------------------

  /** Pings a client that has been silent for the keepalive interval; closes if it never answers. */
  #armKeepalive(): void {
    const { keepaliveInterval, keepaliveTimeout } = this.settings;
    if (!(keepaliveInterval > 0) || keepaliveInterval >= 2 ** 31) return;
    const idle = Date.now() - this.#lastReadAt;
    const wait = this.#keepalivePending ? keepaliveTimeout : Math.max(0, keepaliveInterval - idle);
    this.#keepaliveTimer = setTimeout(() => {
      if (this.#closed) return;
      if (this.#keepalivePending) {
        if (Date.now() - this.#lastReadAt >= keepaliveTimeout) return this.close();
        this.#keepalivePending = false;
      } else if (Date.now() - this.#lastReadAt >= keepaliveInterval) {
        this.#keepalivePending = true;
        this.#queue(pingFrame(new Uint8Array(8), false));
      }
      this.#armKeepalive();
    }, wait);
    // A keepalive timer alone never keeps the process running.
    Deno.unrefTimer(this.#keepaliveTimer as unknown as number);
  }

  // ---- input ---------------------------------------------------------------

  #receive(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.#lastReadAt = Date.now();
    this.#keepalivePending = false;
    const buf = this.#input.length === 0 ? chunk : concat([this.#input, chunk]);
    let p = 0;
    try {
      if (!this.#prefaceSeen) {
        const n = Math.min(buf.length, PREFACE.length);
        for (let i = 0; i < n; i++) {
          if (buf[i] !== PREFACE[i]) {
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad preface");
          }
        }
        if (buf.length < PREFACE.length) {
          this.#input = buf.slice();
          return;
        }
        this.#prefaceSeen = true;
        p = PREFACE.length;
      }
      const maxFrame = this.settings.maxFrameSize;
      while (buf.length - p >= FRAME_HEADER_SIZE && !this.#closed) {
        const length = (buf[p] << 16) | (buf[p + 1] << 8) | buf[p + 2];
        if (length > maxFrame) {
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "frame larger than max frame size");
        }
        if (buf.length - p < FRAME_HEADER_SIZE + length) break;
        const type = buf[p + 3];
        const flags = buf[p + 4];
        const streamId = read31(buf, p + 5);
        const payload = buf.subarray(p + FRAME_HEADER_SIZE, p + FRAME_HEADER_SIZE + length);
        p += FRAME_HEADER_SIZE + length;
        try {
          this.#frame(type, flags, streamId, payload);
        } catch (err) {
          if (!(err instanceof StreamError)) throw err;
          const s = this.#streams.get(err.streamId);
          if (s) this.resetStream(s, err.code, false);
          else this.#queue(rstStreamFrame(err.streamId, err.code));
        }
      }
    } catch (err) {
      if (err instanceof ConnectionError) return this.#connectionError(err);
      throw err;
    }
    // Keep the unparsed tail; copy it so the socket's chunk can be released.
    this.#input = p === buf.length ? new Uint8Array(0) : buf.slice(p);
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (!this.#settingsSeen && type !== FrameType.SETTINGS) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "first frame must be SETTINGS");
    }
    if (this.#blockStream !== 0 && type !== FrameType.CONTINUATION) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case FrameType.DATA:
        return this.#data(flags, id, payload);
      case FrameType.HEADERS:
        return this.#headers(flags, id, payload);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PRIORITY on stream 0");
        if (payload.length !== 5) {
          throw new StreamError(id, ErrorCode.FRAME_SIZE_ERROR, "PRIORITY length");
        }
        return;
      case FrameType.RST_STREAM:
        return this.#rstStream(id, payload);
      case FrameType.SETTINGS:
        return this.#settings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "client sent PUSH_PROMISE");
      case FrameType.PING:
        return this.#ping(flags, id, payload);
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "GOAWAY on a stream");
        if (payload.length < 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "GOAWAY");
        this.#goingAway = true;
        this.#maybeFinish();
        return;
      case FrameType.WINDOW_UPDATE:
        return this.#windowUpdate(id, payload);
      case FrameType.CONTINUATION:
        return this.#continuation(flags, id, payload);
      default:
        return; // unknown frame types are ignored (RFC 9113 §4.1)
    }
  }

  /** The payload without padding; throws PROTOCOL_ERROR if the padding is too long. */
  #unpad(flags: number, payload: Uint8Array, extra: number): Uint8Array {
    if (!(flags & Flag.PADDED)) return payload.subarray(extra);
    if (payload.length < 1) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "padded frame");
    const pad = payload[0];
    if (pad + 1 + extra > payload.length) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "padding longer than the frame");
    }
    return payload.subarray(1 + extra, payload.length - pad);
  }

  #data(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on stream 0");
    // Every DATA octet counts against the connection window, whatever the stream's state.
    if (payload.length > this.#recvWindow) {
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window exceeded");
    }
    this.#recvWindow -= payload.length;
    this.#consumed(payload.length);
    const data = this.#unpad(flags, payload, 0);
    const s = this.#streams.get(id);
    if (!s) {
      if (id > this.#lastStreamId) {
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "DATA on an idle stream");
      }
      // A stream we closed or reset: frames the client sent before it knew are dropped.
      return;
    }
    if (s.remoteEnded) throw new StreamError(id, ErrorCode.STREAM_CLOSED, "DATA after END_STREAM");
    if (payload.length > s.recvWindow) {
      throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, "stream window exceeded");
    }
    s.recvWindow -= payload.length;
    s.recvConsumed += payload.length;
    if (flags & Flag.END_STREAM) s.remoteEnded = true;
    // The gRPC layer bounds what it buffers (message size limit), so the
    // window is handed back as soon as the data is passed on.
    if (data.length > 0) s.onData(data);
    if (s.remoteEnded) {
      s.onEnd();
      if (s.localEnded) this.#forget(s);
    } else if (s.recvConsumed >= this.settings.initialWindowSize / 2) {
      this.#queue(windowUpdateFrame(id, s.recvConsumed));
      s.recvWindow += s.recvConsumed;
      s.recvConsumed = 0;
    }
  }

  #consumed(n: number): void {
    this.#recvConsumed += n;
    if (this.#recvConsumed >= this.settings.connectionWindowSize / 2) {
      this.#queue(windowUpdateFrame(0, this.#recvConsumed));
      this.#recvWindow += this.#recvConsumed;
      this.#recvConsumed = 0;
    }
  }

  #headers(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "HEADERS on stream 0");
    const block = this.#unpad(flags, payload, flags & Flag.PRIORITY ? 5 : 0);
    this.#blockStream = id;
    this.#blockFlags = flags;
    this.#blockParts = [block];
    this.#blockBytes = block.length;
    if (flags & Flag.END_HEADERS) this.#headerBlock();
  }

  #continuation(flags: number, id: number, payload: Uint8Array): void {
    if (this.#blockStream === 0 || id !== this.#blockStream) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
    }
    this.#blockBytes += payload.length;
    // CVE-2024-27316: a block that never ends must not grow without bound.
    if (this.#blockBytes > this.settings.maxHeaderListSize * MAX_HEADER_BLOCK_FACTOR) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
    this.#blockParts.push(payload);
    if (flags & Flag.END_HEADERS) this.#headerBlock();
  }

  /** A complete header block: a new request, or trailers of an open stream. */
  #headerBlock(): void {
    const id = this.#blockStream;
    const flags = this.#blockFlags;
    const block = this.#blockParts.length === 1
      ? this.#blockParts[0]
      : concat(this.#blockParts, this.#blockBytes);
    this.#blockStream = 0;
    this.#blockParts = [];
    let headers: [string, string][] | undefined;
    let tooLarge = false;
    try {
      headers = this.#decoder.decode(block, this.settings.maxHeaderListSize);
    } catch (err) {
      if (!(err instanceof HeaderListTooLarge)) {
        throw new ConnectionError(ErrorCode.COMPRESSION_ERROR, (err as Error).message);
      }
      tooLarge = true;
    }
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const existing = this.#streams.get(id);
    if (existing) {
      // Trailers from the client: they must end the stream.
      if (!endStream || existing.remoteEnded) {
        throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "HEADERS on an open stream");
      }
      existing.remoteEnded = true;
      existing.onEnd();
      if (existing.localEnded) this.#forget(existing);
      return;
    }
    if (id % 2 === 0 || id <= this.#lastStreamId) {
      if (id <= this.#lastStreamId && id % 2 === 1) {
        throw new ConnectionError(ErrorCode.STREAM_CLOSED, "HEADERS on a closed stream");
      }
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "bad stream id");
    }
    this.#lastStreamId = id;
    if (this.#goingAway) return;
    if (tooLarge) {
      // RFC 9113 §8.2.3 lets us answer 431; a gRPC client understands a reset.
      this.#queue(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    if (this.#streams.size >= this.settings.maxConcurrentStreams) {
      this.#queue(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
      return;
    }
    const s = new H2Stream(id, this, this.#peerInitialWindow);
    s.remoteEnded = endStream;
    this.#streams.set(id, s);
    if (!validRequest(headers!)) {
      this.resetStream(s, ErrorCode.PROTOCOL_ERROR, false);
      return;
    }
    this.#onStream(s, headers!);
    if (endStream && this.#streams.get(id) === s) s.onEnd();
  }

  #rstStream(id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on stream 0");
    if (payload.length !== 4) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "RST_STREAM");
    if (id > this.#lastStreamId) {
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on an idle stream");
    }
    const now = Date.now();
    if (now - this.#resetWindowStart >= 1000) {
      this.#resetWindowStart = now;
      this.#resetsInWindow = 0;
    }
    if (++this.#resetsInWindow > this.settings.maxResetsPerSecond) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many stream resets");
    }
    const s = this.#streams.get(id);
    if (s) this.resetStream(s, read32(payload, 0), true);
  }

  #settings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & Flag.ACK) {
      if (payload.length !== 0) {
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS ACK");
      }
      return;
    }
    if (payload.length % 6 !== 0) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS");
    for (let i = 0; i < payload.length; i += 6) {
      const key = (payload[i] << 8) | payload[i + 1];
      const value = read32(payload, i + 2);
      switch (key) {
        case Setting.ENABLE_PUSH:
          if (value > 1) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "ENABLE_PUSH");
          break;
        case Setting.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) {
            throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "INITIAL_WINDOW_SIZE");
          }
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const s of this.#streams.values()) {
            s.sendWindow += delta;
            if (s.sendWindow > MAX_WINDOW) {
              throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "window overflow");
            }
          }
          break;
        }
        case Setting.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > 16_777_215) {
            throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "MAX_FRAME_SIZE");
          }
          this.#peerMaxFrameSize = value;
          break;
        default:
          // HEADER_TABLE_SIZE needs nothing (the encoder never indexes); others are advisory.
          break;
      }
    }
    this.#settingsSeen = true;
    this.#ack(SETTINGS_ACK);
    if (this.#sendable.size > 0) this.#scheduleFlush();
  }

  /** Queues an acknowledgement; a peer causing too many unflushed ones is cut off (floods). */
  #ack(frame: Uint8Array): void {
    this.#pendingAcks++;
    if (++this.#ackBacklog > MAX_PENDING_ACKS) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too many unacknowledged frames");
    }
    this.#queue(frame);
  }

  #ping(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "PING on a stream");
    if (payload.length !== 8) throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "PING");
    if (flags & Flag.ACK) return;
    this.#enforcePingPolicy();
    this.#ack(pingFrame(payload.slice(), true));
  }

  /** etcd's keepalive enforcement, as grpc-go applies it (`too_many_pings`). */
  #enforcePingPolicy(): void {
    const now = Date.now();
    const last = this.#lastPingAt;
    this.#lastPingAt = now;
    if (this.#resetPingStrikes) {
      this.#resetPingStrikes = false;
      this.#pingStrikes = 0;
      return;
    }
    const minGap = this.#streams.size === 0 ? PING_WITHOUT_STREAMS : this.settings.keepaliveMinTime;
    if (now - last < minGap) this.#pingStrikes++;
    if (this.#pingStrikes > MAX_PING_STRIKES) {
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, "too_many_pings");
    }
  }

  #windowUpdate(id: number, payload: Uint8Array): void {
    if (payload.length !== 4) {
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, "WINDOW_UPDATE");
    }
    const inc = read31(payload, 0);
    if (id === 0) {
      if (inc === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "window increment 0");
      this.#sendWindow += inc;
      if (this.#sendWindow > MAX_WINDOW) {
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, "connection window overflow");
      }
    } else {
      const s = this.#streams.get(id);
      if (!s) {
        if (id > this.#lastStreamId) {
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, "WINDOW_UPDATE on an idle stream");
        }
        return;
      }
      if (inc === 0) throw new StreamError(id, ErrorCode.PROTOCOL_ERROR, "window increment 0");
      s.sendWindow += inc;
      if (s.sendWindow > MAX_WINDOW) {
        throw new StreamError(id, ErrorCode.FLOW_CONTROL_ERROR, "stream window overflow");
      }
    }
    if (this.#sendable.size > 0) this.#scheduleFlush();
  }
}

/** Pseudo-headers a request must carry, and no upper-case or connection-specific names. */
function validRequest(headers: [string, string][]): boolean {
  let method = false;
  let path = false;
  let regular = false;
  for (const [name, value] of headers) {
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular) return false;
      if (name === ":method") method = true;
      else if (name === ":path") path = value !== "";
      else if (name !== ":scheme" && name !== ":authority") return false;
    } else {
      regular = true;
      if (name !== name.toLowerCase()) return false;
      if (name === "connection" || name === "transfer-encoding" || name === "keep-alive") {
        return false;
      }
      if (name === "te" && value !== "trailers") return false;
    }
  }
  return method && path;
}

/** Copies `parts` (`total` bytes) to the start of `target`; returns that span of it. */
function joinInto(target: Uint8Array, parts: Uint8Array[], total: number): Uint8Array {
  let at = 0;
  for (const p of parts) {
    target.set(p, at);
    at += p.length;
  }
  return target.subarray(0, total);
}

/** Joins `parts` into one array (`total` bytes long if known). */
export function concat(parts: Uint8Array[], total?: number): Uint8Array {
  if (total === undefined) {
    total = 0;
    for (const p of parts) total += p.length;
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
