/**
 * Minimal structured logger with kine's output conventions: info/warn/error go to stderr; with
 * `debug` enabled the level becomes trace and debug/trace lines go to stdout.
 *
 * Plain format: `<ISO-8601 UTC time> <LEVEL> <message> key=value …`.
 * JSON format: one object per line, `{"time", "severity", "message", …fields}` (Google Cloud
 * structured-logging key names, as upstream kine uses).
 *
 * Disabled levels are no-op functions, so a disabled `debug(...)` costs only the call (and the
 * construction of its arguments — guard expensive ones with {@link Logger.debugEnabled}).
 *
 * @module
 */

/** Log levels, most verbose first. */
export type Level = "trace" | "debug" | "info" | "warn" | "error";

/** Extra key/value pairs attached to a log line. */
export type Fields = Record<string, unknown>;

/** A logging function for one level. */
export type LogFn = (msg: string, fields?: Fields) => void;

/** The logger used throughout kine. */
export interface Logger {
  /** Very verbose diagnostics (every SQL statement, per-RPC timings); only with `debug`. */
  readonly trace: LogFn;
  /** Debug diagnostics; only with `debug`. */
  readonly debug: LogFn;
  /** Normal operational messages. */
  readonly info: LogFn;
  /** Something unexpected that kine recovered from. */
  readonly warn: LogFn;
  /** A failure. */
  readonly error: LogFn;
  /** Whether trace/debug lines are emitted; use it to skip building expensive fields. */
  readonly debugEnabled: boolean;
  /** A logger that adds `fields` to every line (call-site fields win on key clashes). */
  with(fields: Fields): Logger;
}

/** Synchronous byte sink, e.g. `Deno.stderr`. */
export interface SyncWriter {
  /** Writes some of `p` and returns the number of bytes written. */
  writeSync(p: Uint8Array): number;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Output format; default `"plain"`. */
  format?: "plain" | "json";
  /** Enable trace/debug output (to stdout); default false. */
  debug?: boolean;
  /** Destination of trace/debug lines; default `Deno.stdout`. */
  stdout?: SyncWriter;
  /** Destination of info/warn/error lines; default `Deno.stderr`. */
  stderr?: SyncWriter;
  /** Fields added to every line. */
  fields?: Fields;
}

const noop: LogFn = () => {};

/** A logger that discards everything; for tests and embedders. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  debugEnabled: false,
  with: () => silentLogger,
};

const PLAIN_LEVEL: Readonly<Record<Level, string>> = {
  trace: "TRACE",
  debug: "DEBUG",
  info: "INFO",
  warn: "WARN",
  error: "ERROR",
};

/** JSON `severity` values; logrus's level names, which upstream kine emits. */
const JSON_SEVERITY: Readonly<Record<Level, string>> = {
  trace: "trace",
  debug: "debug",
  info: "info",
  warn: "warning",
  error: "error",
};

const RESERVED_JSON_KEYS = new Set(["time", "severity", "message"]);
const BARE_VALUE = /^[A-Za-z0-9_.\-/:@+,%]+$/;

const encoder = new TextEncoder();

function writeAll(w: SyncWriter, line: string): void {
  let p = encoder.encode(line);
  try {
    while (p.length > 0) {
      const n = w.writeSync(p);
      p = p.subarray(n);
    }
  } catch {
    // A closed or broken stdout/stderr must never crash the server.
  }
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value, jsonReplacer) ?? String(value);
  } catch {
    return JSON.stringify(String(value));
  }
}

function plainValue(value: unknown): string {
  let s: string;
  if (typeof value === "string") s = value;
  else if (value instanceof Error) s = value.message;
  else if (value instanceof Date) s = value.toISOString();
  else if (
    value === null || value === undefined || typeof value === "number" ||
    typeof value === "boolean" || typeof value === "bigint"
  ) {
    return String(value);
  } else s = safeJson(value);
  return BARE_VALUE.test(s) ? s : JSON.stringify(s);
}

function formatPlain(level: Level, msg: string, fields: Fields | undefined): string {
  let line = `${new Date().toISOString()} ${PLAIN_LEVEL[level]} ${msg}`;
  if (fields !== undefined) {
    for (const k in fields) line += ` ${k}=${plainValue(fields[k])}`;
  }
  return line + "\n";
}

function formatJson(level: Level, msg: string, fields: Fields | undefined): string {
  const obj: Record<string, unknown> = {
    time: new Date().toISOString(),
    severity: JSON_SEVERITY[level],
    message: msg,
  };
  if (fields !== undefined) {
    for (const k in fields) obj[RESERVED_JSON_KEYS.has(k) ? `fields.${k}` : k] = fields[k];
  }
  return safeJson(obj) + "\n";
}

/**
 * Creates a {@link Logger}.
 *
 * @example
 * ```ts
 * const log = createLogger({ format: "json", debug: false });
 * log.info("Kine available at http://127.0.0.1:2379", { driver: "sqlite" });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? "plain";
  const debug = options.debug ?? false;
  const out = options.stdout ?? Deno.stdout;
  const err = options.stderr ?? Deno.stderr;
  const base = options.fields;
  const fmt = format === "json" ? formatJson : formatPlain;

  const make = (level: Level, sink: SyncWriter): LogFn => (msg, fields) => {
    const all = base === undefined ? fields : fields === undefined ? base : { ...base, ...fields };
    writeAll(sink, fmt(level, msg, all));
  };

  return {
    trace: debug ? make("trace", out) : noop,
    debug: debug ? make("debug", out) : noop,
    info: make("info", err),
    warn: make("warn", err),
    error: make("error", err),
    debugEnabled: debug,
    with: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}
