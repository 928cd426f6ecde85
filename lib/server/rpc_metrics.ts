/**
 * Per-RPC gRPC server metrics under the names etcd exposes (go-grpc-prometheus):
 * `grpc_server_started_total`, `grpc_server_handled_total` (with `grpc_code`),
 * `grpc_server_msg_received_total`, `grpc_server_msg_sent_total` and the
 * `grpc_server_handling_seconds` histogram, each labelled `grpc_type`,
 * `grpc_service` and `grpc_method`. Handlers are wrapped where they are
 * registered, so the services themselves know nothing of it.
 *
 * @module
 */
import type { CounterChild, HistogramChild, KineMetrics } from "../metrics/mod.ts";
import type { MethodDefinition, StatusObject } from "./h2/grpc.ts";
import type { TraceFn } from "./trace.ts";

/** gRPC status names by code, as go-grpc-prometheus writes `grpc_code`. */
const CODE_NAMES = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];
const codeName = (code: number) => CODE_NAMES[code] ?? String(code);
const CANCELLED = 1;
const UNKNOWN = 2;

/** One method's metric children, looked up once at registration. */
class MethodMetrics {
  readonly started: CounterChild;
  readonly received: CounterChild;
  readonly sent: CounterChild;
  readonly handling: HistogramChild;
  readonly #handled: CounterChild[] = [];

  constructor(private readonly m: KineMetrics, private readonly labels: [string, string, string]) {
    this.started = m.grpcStarted.labels(...labels);
    this.received = m.grpcMsgReceived.labels(...labels);
    this.sent = m.grpcMsgSent.labels(...labels);
    this.handling = m.grpcHandlingSeconds.labels(...labels);
    // Shown at 0 from the start, so an alert on a method's success rate has a series to read.
    this.#handled[0] = m.grpcHandled.labels(...labels, CODE_NAMES[0]);
  }

  /** Records the end of one call: its status code and how long it took; returns that, ms. */
  done(code: number, startedAt: number): number {
    const child = this.#handled[code] ??= this.m.grpcHandled.labels(
      ...this.labels,
      codeName(code),
    );
    child.inc();
    const ms = performance.now() - startedAt;
    this.handling.observe(ms / 1000);
    return ms;
  }
}

function grpcType(def: MethodDefinition): string {
  if (def.requestStream) return def.responseStream ? "bidi_stream" : "client_stream";
  return def.responseStream ? "server_stream" : "unary";
}

/** Counts every message a streaming call writes. */
function countWrites(call: { write: (...args: any[]) => boolean }, sent: CounterChild): void {
  const write = call.write.bind(call);
  call.write = (...args: any[]) => {
    sent.inc();
    return write(...args);
  };
}

/**
 * Ends the record of a streaming call once: with the status it is ended with
 * (`end()` and an emitted error both send one), or Canceled when the client
 * goes away first.
 */
function onStreamEnd(call: any, end: (code: number) => void): void {
  let ended = false;
  const once = (code: number) => {
    if (ended) return;
    ended = true;
    end(code);
  };
  const sendStatus = call.sendStatus.bind(call);
  call.sendStatus = (status: StatusObject) => {
    once(status.code ?? UNKNOWN);
    return sendStatus(status);
  };
  call.on("cancelled", () => once(CANCELLED));
}

function wrap(
  handler: (...args: any[]) => unknown,
  type: string,
  mm: MethodMetrics,
  method: string,
  trace: TraceFn | undefined,
): (...args: any[]) => unknown {
  if (type === "unary") {
    return (
      call: { request: unknown },
      callback: (err: StatusObject | null, res?: unknown) => void,
    ) => {
      const startedAt = performance.now();
      mm.started.inc();
      mm.received.inc();
      return handler(call, (err: StatusObject | null, res?: unknown) => {
        if (!err) mm.sent.inc();
        const code = err ? err.code ?? UNKNOWN : 0;
        const ms = mm.done(code, startedAt);
        trace?.(method, call.request, res, codeName(code), ms);
        return callback(err, res);
      });
    };
  }
  return (call: any) => {
    const startedAt = performance.now();
    mm.started.inc();
    if (type === "server_stream") mm.received.inc();
    else call.on("data", () => mm.received.inc());
    countWrites(call, mm.sent);
    onStreamEnd(call, (code) => mm.done(code, startedAt));
    return handler(call);
  };
}

/**
 * The handlers of `service`, each recording its calls in `metrics` and handing each unary call's
 * end to `trace` (lib/server/trace.ts).
 */
export function instrumentService<H extends Record<string, any>>(
  service: Record<string, MethodDefinition>,
  handlers: H,
  metrics: KineMetrics | undefined,
  trace?: TraceFn,
): H {
  if (!metrics) return handlers;
  const out: Record<string, unknown> = {};
  for (const [name, handler] of Object.entries(handlers)) {
    const def = service[name];
    if (!def) {
      // Not a method of the service: grpc-js never calls it either.
      out[name] = handler;
      continue;
    }
    // "/etcdserverpb.KV/Range" → service and method.
    const [, serviceName, method] = def.path.split("/");
    const type = grpcType(def);
    const mm = new MethodMetrics(metrics, [type, serviceName, method]);
    out[name] = wrap(handler, type, mm, method, trace);
  }
  return out as H;
}
