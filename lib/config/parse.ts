/**
 * Command-line / environment parser producing a {@link KineConfig}.
 *
 * Precedence is flag > environment variable > default. Flags follow Go's `flag` package syntax:
 * `--flag value`, `--flag=value`, `-flag value`, `-flag=value`; boolean flags take no separate
 * argument (`--debug`, `--debug=false`).
 *
 * @module
 */

import { checkIdentityProvider } from "../backend/sql/auth/identity.ts";
import { formatDuration, parseDuration } from "./duration.ts";
import type { KineConfig } from "./types.ts";
import {
  DEFAULT_MAX_IDLE_CONNECTIONS,
  DEFAULT_METRICS_BIND_ADDRESS,
  EMPTY_LISTEN_ADDRESS,
  FLAGS,
  type FlagSpec,
  USAGE_HEADER,
} from "./flags.ts";
import { GIT_COMMIT, VERSION } from "./version.ts";

/** Result of {@link parseArgs}; user input never makes it throw. */
export type ParseResult =
  | { kind: "config"; config: KineConfig }
  | { kind: "help"; text: string }
  | { kind: "version"; text: string }
  | { kind: "error"; message: string };

const FLAGS_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAGS.map((f) => [f.name, f]));

const TRUE_VALUES = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE_VALUES = new Set(["0", "f", "F", "FALSE", "false", "False"]);

type Parsed = { ok: true; value: string | number | boolean } | { ok: false; reason: string };

/** Parses one raw value according to the flag's kind (Go strconv/time semantics). */
function parseValue(spec: FlagSpec, raw: string): Parsed {
  switch (spec.kind) {
    case "string":
      return { ok: true, value: raw };
    case "bool":
      if (TRUE_VALUES.has(raw)) return { ok: true, value: true };
      if (FALSE_VALUES.has(raw)) return { ok: true, value: false };
      return { ok: false, reason: "expected a boolean (true or false)" };
    case "int": {
      if (!/^[+-]?[0-9]+$/.test(raw)) return { ok: false, reason: "expected an integer" };
      const n = Number(raw);
      if (!Number.isSafeInteger(n)) return { ok: false, reason: "value out of range" };
      return { ok: true, value: n === 0 ? 0 : n }; // normalise -0
    }
    case "duration":
      try {
        return { ok: true, value: parseDuration(raw) };
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
  }
}

function invalidValue(raw: string, name: string, reason: string): string {
  return `invalid value ${JSON.stringify(raw)} for flag --${name}: ${reason}`;
}

function buildDefaults(): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const spec of FLAGS) {
    const p = parseValue(spec, spec.default);
    if (!p.ok) throw new Error(`bad built-in default for --${spec.name}: ${p.reason}`);
    out[spec.key] = p.value;
  }
  return out;
}

/**
 * Applies kine's value conventions to a freshly parsed config (not idempotent — run it once on raw
 * values): empty listen address → `unix://kine.sock`, empty metrics address → `127.0.0.1:8080`, max idle
 * connections 0 → 20 and negative → 0 (no reuse).
 */
function normalize(cfg: KineConfig): KineConfig {
  if (cfg.listenAddress === "") cfg.listenAddress = EMPTY_LISTEN_ADDRESS;
  if (cfg.metricsBindAddress === "") cfg.metricsBindAddress = DEFAULT_METRICS_BIND_ADDRESS;
  if (cfg.datastoreMaxIdleConnections === 0) {
    cfg.datastoreMaxIdleConnections = DEFAULT_MAX_IDLE_CONNECTIONS;
  } else if (cfg.datastoreMaxIdleConnections < 0) {
    cfg.datastoreMaxIdleConnections = 0;
  }
  return cfg;
}

/**
 * The configuration kine uses when no flags or environment variables are given. Pool settings
 * are already normalised (`datastoreMaxIdleConnections` is 20; in a {@link KineConfig} 0 means
 * "no idle connections").
 */
export function defaultConfig(): KineConfig {
  return normalize(buildDefaults() as unknown as KineConfig);
}

/** Smallest accepted `watchProgressNotifyInterval` in milliseconds (10ns). */
export const MIN_WATCH_PROGRESS_NOTIFY_INTERVAL = 10 / 1e6;

/**
 * Checks the cross-field and range rules kine enforces at startup. Returns the one-line error
 * message of the first violated rule, or `undefined` if the config is valid. Useful for embedders
 * that build a {@link KineConfig} by hand; {@link parseArgs} applies it automatically.
 */
export function validateConfig(cfg: KineConfig): string | undefined {
  const tls = checkTlsFlags(cfg);
  if (tls !== undefined) return tls;
  if (cfg.logFormat !== "plain" && cfg.logFormat !== "json") {
    return `invalid log format: ${cfg.logFormat}`;
  }
  if (
    !(cfg.watchProgressNotifyInterval >= MIN_WATCH_PROGRESS_NOTIFY_INTERVAL)
  ) {
    return invalidValue(
      formatDuration(cfg.watchProgressNotifyInterval),
      "watch-progress-notify-interval",
      "must be at least 10ns",
    );
  }
  const jitter = cfg.compactIntervalJitter;
  if (!Number.isInteger(jitter) || jitter < 0 || jitter > 100) {
    return invalidValue(String(jitter), "compact-interval-jitter", "must be between 0 and 100");
  }
  if (!(cfg.compactTimeout > 0)) {
    return invalidValue(formatDuration(cfg.compactTimeout), "compact-timeout", "must be positive");
  }
  if (!Number.isInteger(cfg.compactMinRetain) || cfg.compactMinRetain < 0) {
    return invalidValue(String(cfg.compactMinRetain), "compact-min-retain", "must not be negative");
  }
  if (!(cfg.compactBatchSize >= 100)) {
    return `compact-batch-size ${cfg.compactBatchSize} too small: must be at least 100`;
  }
  if (!(cfg.authTokenTtl >= 1)) {
    return invalidValue(String(cfg.authTokenTtl), "auth-token-ttl", "must be at least 1");
  }
  if (!Number.isInteger(cfg.pollBatchSize) || cfg.pollBatchSize < 1) {
    return invalidValue(String(cfg.pollBatchSize), "poll-batch-size", "must be at least 1");
  }
  if (!(cfg.pollInterval >= 0)) {
    return invalidValue(formatDuration(cfg.pollInterval), "poll-interval", "must not be negative");
  }
  if (!Number.isInteger(cfg.maxTxnOps) || cfg.maxTxnOps < 1) {
    return invalidValue(String(cfg.maxTxnOps), "max-txn-ops", "must be at least 1");
  }
  if (!Number.isInteger(cfg.maxRequestBytes) || cfg.maxRequestBytes < 1) {
    return invalidValue(String(cfg.maxRequestBytes), "max-request-bytes", "must be at least 1");
  }
  if (!Number.isInteger(cfg.quotaBackendBytes) || cfg.quotaBackendBytes < 0) {
    return invalidValue(
      String(cfg.quotaBackendBytes),
      "quota-backend-bytes",
      "must not be negative",
    );
  }
  return checkIdentityProvider(cfg.identityProvider);
}

/**
 * Listener TLS is configured as a whole or not at all: a half-configured set would otherwise serve
 * plaintext to clients that believe they asked for TLS.
 */
function checkTlsFlags(cfg: KineConfig): string | undefined {
  const cert = cfg.serverCertFile !== "";
  const key = cfg.serverKeyFile !== "";
  if (cert !== key) {
    const [set, missing] = cert
      ? ["--server-cert-file", "--server-key-file"]
      : ["--server-key-file", "--server-cert-file"];
    return `${set} is set without ${missing}: listener TLS needs both`;
  }
  if (cfg.trustedCaFile !== "" && !cert) {
    return "--trusted-ca-file is set without --server-cert-file and --server-key-file: " +
      "client certificates are only checked on a TLS listener";
  }
  if (cfg.clientCertAuth && cfg.trustedCaFile === "") {
    return "--client-cert-auth is set without --trusted-ca-file: no client certificate would be " +
      "verified";
  }
  return undefined;
}

/** The `--version` output: `<version> (<commit>)`. */
export function versionText(): string {
  return `${VERSION} (${GIT_COMMIT})`;
}

/** A flag's default as `--help` and the README show it. */
function shownDefault(f: FlagSpec): string {
  return f.kind === "string" ? JSON.stringify(f.default) : f.default;
}

/** The `--help` output: header, usage line and every flag with its environment variable and default. */
export function helpText(): string {
  const rows: [string, string][] = FLAGS.map((f) => {
    const left = f.kind === "bool" ? `--${f.name}` : `--${f.name} value`;
    return [left, `${f.usage} (default: ${shownDefault(f)}) [$${f.env}]`];
  });
  rows.push(["--help, -h", "Show this help"]);
  rows.push(["--version, -v", "Print the version"]);
  const width = Math.max(...rows.map(([l]) => l.length)) + 3;
  const lines = [
    USAGE_HEADER,
    "",
    "USAGE:",
    "   kine [flags]",
    "   kine migrate --from SOURCE --to TARGET [flags]   copy a datastore (kine migrate --help)",
    "",
    "FLAGS:",
    ...rows.map(([l, r]) => `   ${l.padEnd(width)}${r}`),
  ];
  return lines.join("\n") + "\n";
}

/**
 * The README's flag table (Markdown), made from the list `--help` prints: flag, environment
 * variable, default and description of every flag.
 */
export function flagTable(): string {
  const cell = (s: string) => s.replaceAll("|", "\\|").replaceAll("<", "\\<");
  const rows = FLAGS.map((f) =>
    `| \`--${f.name}\` | \`${f.env}\` | \`${cell(shownDefault(f))}\` | ${cell(f.usage)} |`
  );
  return ["| flag | environment | default | what |", "| --- | --- | --- | --- |", ...rows]
    .join("\n") + "\n";
}

/**
 * Parses command-line arguments (without the program name) and environment variables into a
 * validated {@link KineConfig}. Precedence: flag > env > default. Never throws for user input;
 * problems come back as `{kind: "error", message}` with a one-line message.
 *
 * @param argv arguments after the program name, e.g. `Deno.args`
 * @param env environment, e.g. `Deno.env.toObject()`
 */
export function parseArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParseResult {
  const fromFlags = new Map<string, string | number | boolean>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      if (i + 1 < argv.length) return positionalError();
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") return positionalError();
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body[0] === "-" || body[0] === "=") {
      return { kind: "error", message: `bad flag syntax: ${arg}` };
    }
    const eq = body.indexOf("=");
    const name = eq >= 0 ? body.slice(0, eq) : body;
    const inline = eq >= 0 ? body.slice(eq + 1) : undefined;

    if (name === "help" || name === "h") return { kind: "help", text: helpText() };
    if (name === "version" || name === "v") return { kind: "version", text: versionText() };

    const spec = FLAGS_BY_NAME.get(name);
    if (spec === undefined) {
      return { kind: "error", message: `flag provided but not defined: -${name}` };
    }
    let raw: string;
    if (inline !== undefined) {
      raw = inline;
    } else if (spec.kind === "bool") {
      raw = "true";
    } else if (i + 1 < argv.length) {
      raw = argv[++i];
    } else {
      return { kind: "error", message: `flag needs an argument: -${name}` };
    }
    const p = parseValue(spec, raw);
    if (!p.ok) return { kind: "error", message: invalidValue(raw, spec.name, p.reason) };
    fromFlags.set(spec.key, p.value);
  }

  const cfg = buildDefaults();
  for (const spec of FLAGS) {
    const flagValue = fromFlags.get(spec.key);
    if (flagValue !== undefined) {
      cfg[spec.key] = flagValue;
      continue;
    }
    const raw = env[spec.env];
    // Like urfave/cli: an empty variable sets string flags to "" but is ignored for others.
    if (raw === undefined || (raw === "" && spec.kind !== "string")) continue;
    const p = parseValue(spec, raw);
    if (!p.ok) {
      return {
        kind: "error",
        message: `invalid value ${
          JSON.stringify(raw)
        } for flag --${spec.name} (from $${spec.env}): ${p.reason}`,
      };
    }
    cfg[spec.key] = p.value;
  }

  const config = normalize(cfg as unknown as KineConfig);
  const problem = validateConfig(config);
  if (problem !== undefined) return { kind: "error", message: problem };
  return { kind: "config", config };
}

function positionalError(): ParseResult {
  return { kind: "error", message: "kine does not accept positional arguments, only flags" };
}
