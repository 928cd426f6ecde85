/**
 * The Prometheus HTTP endpoint (`GET /metrics`).
 *
 * @module
 */

import { type Logger, silentLogger } from "../log/mod.ts";
import { CONTENT_TYPE, type Registry } from "./registry.ts";
import type { Health } from "./store.ts";

/** Options of {@link serveMetrics}. */
export interface ServeMetricsOptions {
  /**
   * Listen address: `host:port`, `:8080` (all interfaces), `[v6]:port`; port 0 picks a free port.
   * The "disabled" value `"0"` must be handled by the caller.
   */
  address: string;
  /** Registry rendered on every scrape. */
  registry: Registry;
  /** Serve HTTPS with this PEM certificate and key. No client certificate is requested. */
  tls?: { cert: string; key: string };
  /** Logger for the listen message and handler errors; default silent. */
  logger?: Logger;
  /** Runs before each scrape (gauges read from the datastore). */
  beforeScrape?: () => Promise<void>;
  /** Answers `/health` and `/readyz`; without it they are 404. */
  health?: () => Promise<Health>;
  /** More handlers by path (profiling); each answers every method itself. */
  routes?: Record<string, (req: Request) => Promise<Response> | Response>;
}

/** A running metrics server. */
export interface MetricsServer {
  /** Scrape URL, e.g. `http://127.0.0.1:8080/metrics` (wildcard hosts shown as loopback). */
  readonly url: string;
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  /** Stops listening and waits for in-flight requests; idempotent. */
  close(): Promise<void>;
}

/**
 * Splits a Go-style `host:port` listen address. An empty host (`:8080`) means all IPv4
 * interfaces (`0.0.0.0`); IPv6 hosts must be bracketed.
 *
 * @throws Error for a missing/invalid port or malformed brackets.
 */
export function parseListenAddress(address: string): { hostname: string; port: number } {
  const bad = (why: string) =>
    new Error(`invalid listen address ${JSON.stringify(address)}: ${why}`);
  const colon = address.lastIndexOf(":");
  if (colon < 0) throw bad("missing port");
  let host = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (host.startsWith("[")) {
    if (!host.endsWith("]")) throw bad("missing ']'");
    host = host.slice(1, -1);
  } else if (host.includes(":")) {
    throw bad("too many colons (bracket IPv6 addresses)");
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw bad("invalid port");
  return { hostname: host === "" ? "0.0.0.0" : host, port: Number(portText) };
}

function urlHost(hostname: string): string {
  if (hostname === "0.0.0.0") return "127.0.0.1";
  if (hostname === "::") return "[::1]";
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** `host:port` as a URL or log shows it (IPv6 bracketed). */
function hostPort(hostname: string, port: number): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

/** etcd's `/health` answer: `{"health":"true","reason":""}`, 503 when unhealthy. */
async function healthResponse(health: () => Promise<Health>): Promise<Response> {
  const h = await health();
  return Response.json({ health: String(h.healthy), reason: h.reason }, {
    status: h.healthy ? 200 : 503,
  });
}

/** `/readyz` as Kubernetes components answer it: `ok`, or 503 and the reason. */
async function readyResponse(health: () => Promise<Health>): Promise<Response> {
  const h = await health();
  return h.healthy
    ? new Response("ok\n", { headers: TEXT })
    : new Response(`[-]datastore failed: ${h.reason}\nreadyz check failed\n`, {
      status: 503,
      headers: TEXT,
    });
}

/**
 * Serves `GET /metrics` (and `HEAD`) from `registry`, `/health` and `/readyz` from `health`, and
 * any further `routes`; other paths get 404, other methods 405. Resolves once listening; rejects
 * if the address is invalid or cannot be bound, naming the metrics listener and the address.
 */
// async, so that a synchronous failure (a bad address, a busy port) is a rejection too.
// deno-lint-ignore require-await
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const { registry, tls } = options;
  const logger = options.logger ?? silentLogger;
  const { hostname, port } = parseListenAddress(options.address);

  const { health, beforeScrape } = options;
  const routes = options.routes ?? {};
  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    const route = routes[path];
    if (route !== undefined) return await route(req);
    const known = path === "/metrics" ||
      (health !== undefined && (path === "/health" || path === "/readyz"));
    if (!known) return new Response("404 page not found\n", { status: 404, headers: TEXT });
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (path === "/health") return await healthResponse(health!);
    if (path === "/readyz") return await readyResponse(health!);
    await beforeScrape?.();
    const body = registry.render();
    return new Response(req.method === "HEAD" ? null : body, {
      headers: { "content-type": CONTENT_TYPE },
    });
  };

  const serveOptions = {
    hostname,
    port,
    onListen: () => {},
    onError: (error: unknown) => {
      logger.error("metrics request failed", { error });
      return new Response("internal server error\n", { status: 500 });
    },
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = tls === undefined
      ? Deno.serve(serveOptions, handler)
      : Deno.serve({ ...serveOptions, cert: tls.cert, key: tls.key }, handler);
  } catch (err) {
    const why = String((err as Error)?.message ?? err).replace(/ \(os error \d+\)$/, "");
    throw new Error(`metrics listener: cannot listen on ${hostPort(hostname, port)}: ${why}`);
  }

  const addr = server.addr;
  const url = `${tls === undefined ? "http" : "https"}://${
    urlHost(addr.hostname)
  }:${addr.port}/metrics`;
  logger.info("Metrics server listening", { address: hostPort(addr.hostname, addr.port), url });

  let closing: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    close(): Promise<void> {
      closing ??= server.shutdown();
      return closing;
    },
  };
}
