/**
 * Kine configuration: the {@link KineConfig} type, the CLI/env parser, defaults and Go-compatible
 * duration helpers.
 *
 * @example
 * ```ts
 * import { parseArgs } from "./lib/config/mod.ts";
 * const r = parseArgs(Deno.args, Deno.env.toObject());
 * if (r.kind === "config") console.log(r.config.listenAddress);
 * ```
 *
 * @module
 */

export type { KineConfig, Millis } from "./types.ts";
export {
  DEFAULT_LISTEN_ADDRESS,
  DEFAULT_MAX_IDLE_CONNECTIONS,
  DEFAULT_METRICS_BIND_ADDRESS,
  EMPTY_LISTEN_ADDRESS,
  FLAGS,
  type FlagSpec,
  USAGE_HEADER,
} from "./flags.ts";
export {
  defaultConfig,
  flagTable,
  helpText,
  MIN_WATCH_PROGRESS_NOTIFY_INTERVAL,
  parseArgs,
  validateConfig,
  versionText,
} from "./parse.ts";
export type { ParseResult } from "./parse.ts";
export { ConfigError } from "./errors.ts";
export { formatDuration, parseDuration, parseDurationNanos } from "./duration.ts";
export { GIT_COMMIT, VERSION } from "./version.ts";
