/**
 * The Prometheus HTTP endpoint (`GET /metrics`).
 *
 * @module
 */

import { type Logger, silentLogger } from "../log/mod.ts";
import { CONTENT_TYPE, type Registry } from "./registry.ts";

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

/**
 * Serves `GET /metrics` (and `HEAD`) from `registry`; other paths get 404, other methods 405.
 * Resolves once listening; rejects if the address is invalid or cannot be bound, naming the
 * metrics listener and the address.
 */
// async, so that a synchronous failure (a bad address, a busy port) is a rejection too.
// deno-lint-ignore require-await
export async function serveMetrics(options: ServeMetricsOptions): Promise<MetricsServer> {
  const { registry, tls } = options;
  const logger = options.logger ?? silentLogger;
  const { hostname, port } = parseListenAddress(options.address);

  const handler = (req: Request): Response => {
    const path = new URL(req.url).pathname;
    if (path !== "/metrics") {
      return new Response("404 page not found\n", {
        status: 404,
        headers: { "content-type": "text/plain; charset=utf-8" },
      });
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
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
