/**
 * etcd's Watch service: one bidirectional stream carries many watches. Events
 * are queued per watch and written in batches (everything queued goes out in
 * one response, split at revision boundaries below the message limit);
 * header revisions never go backwards on a stream.
 *
 * Live events are written as they come; what the client has not read waits,
 * encoded, in the HTTP/2 layer, which counts it per connection. When a
 * connection holds more than its budget, the stream holding most is told
 * ("overBudget") and cancels its watches: a client that stops reading costs
 * bounded memory and never slows anyone else. Catch-ups from history are
 * paced by the stream's back-pressure instead, so a slow reader of a long
 * history is not cut off.
 */
import { type AccessGuard, REVOKED_REASON } from "../auth/mod.ts";
import { ERR_COMPACTED } from "../backend/errors.ts";
import type { ChangeStream, Event, MvccStore } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import type { ServerCall } from "./h2/mod.ts";
import { compareBytes, keyRange, wireKv } from "../translator/mod.ts";
import { callerOf } from "./caller.ts";

/** Responses stay below this many bytes (the limit is 2 MiB), unless one event is larger. */
const MAX_RESPONSE_BYTES = 1536 * 1024;

const ERR_UNHEALTHY = "etcdserver: unhealthy cluster";
/** A catch-up from history waits while a watch has this many events queued. */
const CATCH_UP_HIGH_WATER = 2_000;
const ERR_DUPLICATE_ID = "mvcc: duplicate watch ID provided on the WatchStream";
const ERR_EMPTY_RANGE = "mvcc: watcher range is empty";
const ERR_SLOW = "etcdserver: watcher is too slow: the client stopped reading its events";

export interface WatchOptions {
  backend: MvccStore & ChangeStream;
  logger: Logger;
  /** Periodic progress notification interval, ms. */
  progressInterval: number;
  /** Auth: who may watch what (lib/auth). */
  guard?: AccessGuard;
}

interface StreamWatch {
  id: number;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
  progressNotify: boolean;
  queue: Event[];
  /** Revision of the last response sent for this watch. */
  lastRevision: number;
  /** False until the backend subscription exists (catch-up included). */
  ready: boolean;
  /** Resolves a catch-up waiting for this watch's queue to drain. */
  drained?: () => void;
  cancel?: () => void;
  /** With auth on: the user it runs as and what it covers, checked again on every auth change. */
  access?: { user: string; key: Uint8Array; end: Uint8Array | undefined };
}

/** An event as the Watch response carries it; `encoded` is watch_codec.ts's, once it encoded it. */
type WireEvent = { type: string; kv: unknown; prev_kv: unknown; encoded?: Uint8Array };

/**
 * Wire events made during this turn, by event, without and with prev_kv:
 * every watch that sends an event in the flushes of one publish gets the same
 * object, so it is encoded once. Dropped after those flushes (they are the
 * microtasks queued before this map's first entry), so nothing is kept.
 */
let madeThisTurn: [Map<Event, WireEvent>, Map<Event, WireEvent>] | undefined;

/** The wire form of `e`, shared by the watches that send it in this turn. */
function wireEvent(e: Event, prevKv: boolean): WireEvent {
  if (!madeThisTurn) {
    madeThisTurn = [new Map(), new Map()];
    queueMicrotask(() => madeThisTurn = undefined);
  }
  const made = madeThisTurn[prevKv ? 1 : 0];
  let wire = made.get(e);
  if (!wire) {
    wire = {
      type: e.type === "put" ? "PUT" : "DELETE",
      kv: wireKv(e.kv),
      prev_kv: prevKv && e.prevKv ? wireKv(e.prevKv) : undefined,
      encoded: undefined,
    };
    made.set(e, wire);
  }
  return wire;
}

/**
 * etcd refuses a watch whose range end is at or below its key (compared as
 * bytes; an empty key is "\0", a range end of "\0" means every key from the key).
 */
function emptyWatchRange(key: Uint8Array | undefined, end: Uint8Array | undefined): boolean {
  if (!end || end.length === 0 || (end.length === 1 && end[0] === 0)) return false;
  return compareBytes(key && key.length > 0 ? key : new Uint8Array(1), end) >= 0;
}

function eventBytes(e: Event): number {
  return 64 + e.kv.key.length * 2 + e.kv.value.length + (e.prevKv?.value.length ?? 0);
}

class WatchStream {
  readonly #watches = new Map<number, StreamWatch>();
  #nextId = 0;
  #maxRevision = 0;
  #paused = false;
  #flushQueued = false;
  #progressRequested = false;
  #closed = false;
  readonly #timer: ReturnType<typeof setInterval>;
  /** With auth on, requests wait here in order while their caller is checked. */
  #gate?: Promise<void>;
  readonly #stopFollowingAuth?: () => void;

  constructor(
    private readonly call: ServerCall,
    private readonly o: WatchOptions,
    private readonly onClose: () => void,
  ) {
    call.on("data", (req) => this.#onRequest(req));
    call.on("end", () => this.#close(true));
    call.on("error", () => this.#close(false));
    call.on("cancelled", () => this.#close(false));
    call.on("drain", () => {
      this.#paused = false;
      this.#flush();
    });
    call.on("overBudget", () => this.#cutOff());
    const interval = o.progressInterval * (1 + Math.random() * 0.1);
    this.#timer = setInterval(() => this.#periodicProgress(), interval);
    this.#stopFollowingAuth = o.guard?.onChange(() => this.#recheckAccess());
  }

  /** Ends the stream from the server side (shutdown). */
  close(): void {
    this.#close(true);
  }

  #close(endCall: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.onClose();
    clearInterval(this.#timer);
    this.#stopFollowingAuth?.();
    for (const w of [...this.#watches.values()]) this.#forget(w);
    if (endCall) this.call.end();
  }

  /** Drops a watch: stops its subscription and releases a catch-up waiting on it. */
  #forget(w: StreamWatch): void {
    this.#watches.delete(w.id);
    w.cancel?.();
    w.queue = [];
    w.drained?.();
    w.drained = undefined;
  }

  /** Writes one response with a header that never goes backwards (0 stays 0). */
  #send(revision: number, body: Record<string, unknown>): void {
    if (this.#closed) return;
    if (revision > 0) {
      if (revision < this.#maxRevision) revision = this.#maxRevision;
      else this.#maxRevision = revision;
    }
    if (!this.call.write({ header: { revision }, ...body })) this.#paused = true;
  }

  #onRequest(req: any): void {
    const guard = this.o.guard;
    if (guard && (this.#gate || guard.enabled())) {
      // Checking a caller may wait (JWT): keep this stream's requests in order meanwhile.
      const gate: Promise<void> = (this.#gate ?? Promise.resolve()).then(() =>
        this.#checked(guard, req)
      );
      this.#gate = gate;
      gate.then(() => {
        if (this.#gate === gate) this.#gate = undefined;
      });
      return;
    }
    this.#handle(req);
  }

  async #checked(guard: AccessGuard, req: any): Promise<void> {
    const r = req.create_request;
    if (!r || this.#closed) return this.#handle(req);
    const verdict = await guard.watchCreate(callerOf(this.call), r.key, r.range_end);
    if ("denied" in verdict) {
      this.#send(this.o.backend.currentRevision(), {
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: verdict.denied,
      });
      return;
    }
    const w = this.#create(r);
    if (w && verdict.user !== undefined) {
      w.access = { user: verdict.user, key: r.key, end: r.range_end };
    }
  }

  /** etcd checks a watch when it is created; kine also ends it when the permission goes. */
  #recheckAccess(): void {
    const guard = this.o.guard!;
    for (const w of [...this.#watches.values()]) {
      if (w.access && !guard.watchPermitted(w.access.user, w.access.key, w.access.end)) {
        this.#end(w, { cancel_reason: REVOKED_REASON });
      }
    }
  }

  #handle(req: any): void {
    if (req.create_request) this.#create(req.create_request);
    else if (req.cancel_request) this.#cancel(Number(req.cancel_request.watch_id));
    else if (req.progress_request) this.#requestProgress();
  }

  #allocateId(): number {
    while (this.#watches.has(this.#nextId)) this.#nextId++;
    return this.#nextId++;
  }

  #create(r: any): StreamWatch | undefined {
    const backend = this.o.backend;
    const start = Number(r.start_revision);
    // Refused before a watch exists: one response for watch id -1, as etcd sends.
    const refuse = (reason: string) =>
      this.#send(backend.currentRevision(), {
        watch_id: -1,
        created: true,
        canceled: true,
        cancel_reason: reason,
      });
    if (start < 0) {
      refuse(ERR_COMPACTED);
      return;
    }
    if (emptyWatchRange(r.key, r.range_end)) {
      refuse(ERR_EMPTY_RANGE);
      return;
    }
    let id = Number(r.watch_id);
    if (id !== 0 && this.#watches.has(id)) {
      refuse(ERR_DUPLICATE_ID);
      return;
    }
    if (id === 0) id = this.#allocateId();
    const filters: string[] = r.filters ?? [];
    const w: StreamWatch = {
      id,
      prevKv: r.prev_kv,
      noPut: filters.includes("NOPUT"),
      noDelete: filters.includes("NODELETE"),
      progressNotify: r.progress_notify,
      queue: [],
      lastRevision: start > 0
        ? Math.min(start - 1, backend.currentRevision())
        : backend.syncedRevision(),
      ready: false,
    };
    this.#watches.set(id, w);
    this.#send(w.lastRevision, { watch_id: id, created: true });
    let key: string, end: string;
    try {
      ({ key, end } = keyRange(r.key, r.range_end));
    } catch (err) {
      this.#end(w, { cancel_reason: (err as Error).message });
      return;
    }
    backend.watch(key, end, start, (events) => this.#enqueue(w, events)).then(
      (result) => {
        if (result.compactRevision !== undefined) {
          this.#end(w, { compact_revision: result.compactRevision, cancel_reason: ERR_COMPACTED });
          return;
        }
        if (this.#watches.get(id) !== w) {
          result.cancel();
          return;
        }
        w.cancel = result.cancel;
        w.ready = true;
        this.#scheduleFlush();
      },
      (err) => {
        this.o.logger.error("watch failed", { error: String(err) });
        this.#end(w, { cancel_reason: ERR_UNHEALTHY });
      },
    );
    return w;
  }

  /** Ends a watch from the server side: one canceled response. */
  #end(w: StreamWatch, body: Record<string, unknown>): void {
    if (this.#watches.get(w.id) !== w) return;
    this.#forget(w);
    this.#send(this.o.backend.currentRevision(), { watch_id: w.id, canceled: true, ...body });
  }

  #cancel(id: number): void {
    const w = this.#watches.get(id);
    if (!w) return;
    this.#forget(w);
    this.#send(this.o.backend.currentRevision(), { watch_id: id, canceled: true });
  }

  /** Queues events; during catch-up, returns a promise that waits for the queue to drain. */
  #enqueue(w: StreamWatch, events: Event[]): Promise<void> | undefined {
    if (this.#watches.get(w.id) !== w) return;
    for (const e of events) {
      if (e.type === "put" ? !w.noPut : !w.noDelete) w.queue.push(e);
    }
    this.#scheduleFlush();
    if (!w.ready && w.queue.length >= CATCH_UP_HIGH_WATER) {
      return new Promise((resolve) => w.drained = resolve);
    }
  }

  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** The client stopped reading and its connection's budget is spent: every watch ends. */
  #cutOff(): void {
    if (this.#closed || this.#watches.size === 0) return;
    this.o.logger.warn("cancelling the watches of a client that stopped reading", {
      watches: this.#watches.size,
      queued_bytes: this.call.queuedBytes,
    });
    for (const w of [...this.#watches.values()]) this.#end(w, { cancel_reason: ERR_SLOW });
  }

  #flush(): void {
    for (const w of this.#watches.values()) {
      // Live events go out whatever the back-pressure (the HTTP/2 layer
      // accounts for them); a catch-up waits for the stream to drain.
      while (w.queue.length > 0 && (w.ready || !this.#paused) && !this.#closed) {
        let bytes = 0;
        let n = 0;
        while (
          n < w.queue.length && (n === 0 || bytes + eventBytes(w.queue[n]) <= MAX_RESPONSE_BYTES)
        ) {
          bytes += eventBytes(w.queue[n]);
          n++;
        }
        const batch = w.queue.splice(0, n);
        w.lastRevision = batch[batch.length - 1].kv.modRevision;
        this.#send(w.lastRevision, {
          watch_id: w.id,
          events: batch.map((e) => wireEvent(e, w.prevKv)),
        });
      }
      if (w.drained && !this.#paused && w.queue.length < CATCH_UP_HIGH_WATER) {
        w.drained();
        w.drained = undefined;
      }
    }
    this.#answerProgressRequest();
  }

  #idle(): boolean {
    if (this.#paused) return false;
    for (const w of this.#watches.values()) if (!w.ready || w.queue.length > 0) return false;
    return true;
  }

  /** `WatchProgressRequest`: one stream-wide answer once every watch has caught up. */
  #requestProgress(): void {
    const target = this.o.backend.currentRevision();
    this.o.backend.waitForSyncTo(target).then(() => {
      this.#progressRequested = true;
      this.#answerProgressRequest();
    });
  }

  #answerProgressRequest(): void {
    if (!this.#progressRequested || !this.#idle()) return;
    this.#progressRequested = false;
    const revision = this.o.backend.syncedRevision();
    if (revision > 0) this.#send(revision, { watch_id: -1 });
  }

  /** Periodic notifications for idle watches created with `progress_notify`. */
  #periodicProgress(): void {
    const backend = this.o.backend;
    backend.waitForSyncTo(backend.currentRevision()).then(() => {
      if (this.#paused) return;
      const revision = backend.syncedRevision();
      for (const w of this.#watches.values()) {
        if (!w.progressNotify || !w.ready || w.queue.length > 0) continue;
        if (revision <= 0 || revision < w.lastRevision) continue;
        w.lastRevision = revision;
        this.#send(revision, { watch_id: w.id, events: [] });
      }
    });
  }
}

/** The Watch service for grpc-js, and `closeAll()` to end its streams at shutdown. */
export function watchService(o: WatchOptions) {
  const streams = new Set<WatchStream>();
  return {
    handlers: {
      Watch: (call: ServerCall) => {
        const stream = new WatchStream(call, o, () => streams.delete(stream));
        streams.add(stream);
      },
    },
    closeAll: () => {
      for (const s of streams) s.close();
    },
  };
}
