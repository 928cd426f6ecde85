/**
 * `nats://` endpoints (spec §7.1):
 * `nats://[user:pass@|token@]host[:port][,nats://host2[:port]…][?params]`,
 * with `jetstream://` as the legacy alias.
 *
 * @module
 */
import { parseDuration } from "../../config/duration.ts";

/** Backend TLS files (`--ca-file`, `--cert-file`, `--key-file`). */
export interface NatsTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export interface NatsOptions {
  /** `host:port` of every server; empty with a context file. */
  servers: string[];
  bucket: string;
  replicas: number;
  /** Messages JetStream keeps per key, and so the history reads can reach. */
  revHistory: number;
  /** Backend calls slower than this (ms) are logged at warning level. */
  slowMethodMs: number;
  user?: string;
  pass?: string;
  token?: string;
  credsFile?: string;
  contextFile?: string;
  /** Parameters of upstream's embedded server, which this client-only port ignores. */
  ignored: string[];
  /** Parameters neither kine nor upstream knows (upstream ignores them silently; kine warns). */
  unknown: string[];
}

/** Upstream's embedded-server parameters: accepted, and warned about. */
const EMBEDDED = [
  "noEmbed",
  "serverConfig",
  "stdoutLogging",
  "dontListen",
  "dataDir",
  "embedServer",
];
const DEFAULT_SERVER = "127.0.0.1:4222";
/** Every parameter a NATS endpoint may carry. */
export const NATS_PARAMETERS: readonly string[] = [
  "bucket",
  "replicas",
  "revHistory",
  "slowMethod",
  "contextFile",
  "credsFile",
  ...EMBEDDED,
];

/** An integer parameter; an unparsable one keeps the default, as upstream. */
function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number) {
  const raw = q.get(name);
  if (raw === null || !/^[+-]?\d+$/.test(raw.trim())) return dflt;
  const n = Number(raw.trim());
  if (n < min || n > max) throw new Error(`invalid ${name}, must be >= ${min} and <= ${max}`);
  return n;
}

/** Parses a whole `nats://…` or `jetstream://…` endpoint; messages never echo credentials. */
export function parseNatsEndpoint(endpoint: string): NatsOptions {
  const urls = endpoint.replace(/^jetstream:\/\//, "nats://").split(",").map((s) => s.trim());
  const parsed = urls.map((s) => {
    let u: URL | undefined;
    try {
      u = new URL(s);
    } catch {
      // reported below without the text, which may hold a password
    }
    if (!u || u.protocol !== "nats:") {
      throw new Error(`invalid connection string=${u ? u.host : "<unparsable URL>"}`);
    }
    return u;
  });
  const first = parsed[0];
  const q = first.search ? first.searchParams : parsed[parsed.length - 1].searchParams;
  const slow = q.get("slowMethod");
  let slowMethodMs = 500;
  if (slow !== null) {
    try {
      slowMethodMs = parseDuration(slow);
    } catch {
      throw new Error(`invalid slowMethod duration ${slow}`);
    }
  }
  const options: NatsOptions = {
    servers: parsed.filter((u) => u.hostname !== "").map((u) => `${u.hostname}:${u.port || 4222}`),
    bucket: q.get("bucket") || "kine",
    replicas: intParam(q, "replicas", 1, 1, 5),
    revHistory: intParam(q, "revHistory", 10, 2, 64),
    slowMethodMs,
    ignored: EMBEDDED.filter((p) => q.has(p)),
    unknown: [...new Set(q.keys())].filter((p) => !NATS_PARAMETERS.includes(p)),
  };
  if (!/^[-\w]+$/.test(options.bucket)) throw new Error(`invalid bucket name ${options.bucket}`);
  const contextFile = q.get("contextFile");
  if (contextFile) {
    if (options.servers.length > 0) {
      throw new Error("when using context endpoint no host should be provided");
    }
    options.contextFile = contextFile;
  } else if (options.servers.length === 0) {
    options.servers = [DEFAULT_SERVER];
  }
  const credsFile = q.get("credsFile");
  if (credsFile) options.credsFile = credsFile;
  if (first.username) {
    const user = decodeURIComponent(first.username);
    if (first.password) {
      options.user = user;
      options.pass = decodeURIComponent(first.password);
    } else options.token = user;
  }
  return options;
}
