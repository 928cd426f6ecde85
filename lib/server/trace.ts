/**
 * Request tracing: under `--debug` one line per unary request (method, key or range, revision,
 * result code, duration); always, at info level, a request slower than the threshold — etcd's
 * "apply request took too long". With `--debug` off a request costs one comparison here.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";

/** etcd's default `--warning-apply-duration`. */
export const SLOW_REQUEST_MS = 100;

/** Longest key shown in a trace line; longer ones are cut (keys may be up to 1.5 MiB). */
const MAX_KEY_CHARS = 256;

/** Records the end of one request. */
export type TraceFn = (
  method: string,
  request: unknown,
  response: unknown,
  code: string,
  ms: number,
) => void;

const text = new TextDecoder();

function keyText(bytes: unknown): string | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return undefined;
  const s = text.decode(bytes.subarray(0, MAX_KEY_CHARS));
  return bytes.length > MAX_KEY_CHARS ? `${s}…` : s;
}

/** The fields of a request worth a trace line: its key, range, revision, lease, txn size. */
function describe(request: unknown, response: unknown): Record<string, unknown> {
  const r = (request ?? {}) as Record<string, any>;
  const fields: Record<string, unknown> = {};
  const key = keyText(r.key);
  if (key !== undefined) fields.key = key;
  const end = keyText(r.range_end);
  if (end !== undefined) fields.range_end = end;
  if (r.revision) fields.request_revision = String(r.revision);
  if (r.limit) fields.limit = String(r.limit);
  if (Array.isArray(r.compare)) {
    fields.compares = r.compare.length;
    fields.success_ops = r.success?.length ?? 0;
    fields.failure_ops = r.failure?.length ?? 0;
  }
  if (r.ID) fields.lease = String(r.ID);
  if (r.TTL) fields.ttl = String(r.TTL);
  const header = (response as { header?: { revision?: unknown } } | undefined)?.header;
  if (header?.revision !== undefined) fields.revision = String(header.revision);
  return fields;
}

/**
 * A trace function for `logger`: every request at debug level when the logger has debug on,
 * requests of `slowMs` or more at info level always.
 */
export function requestTracer(logger: Logger, slowMs = SLOW_REQUEST_MS): TraceFn {
  const debug = logger.debugEnabled;
  return (method, request, response, code, ms) => {
    if (!debug && ms < slowMs) return;
    const fields = { method, ...describe(request, response), code, took: `${ms.toFixed(3)}ms` };
    if (ms >= slowMs) {
      logger.info("request took too long", { ...fields, expected: `${slowMs}ms` });
    } else logger.debug("request", fields);
  };
}
