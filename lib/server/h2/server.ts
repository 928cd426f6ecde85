/**
 * A gRPC server on this module's HTTP/2 connections: services registered as
 * grpc-js's `addService(definition, implementation)`, listeners on TCP, TLS
 * (ALPN `h2`, optionally requiring client certificates signed by a given CA)
 * and unix sockets, and graceful shutdown with GOAWAY.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import * as net from "node:net";
import * as tls from "node:tls";
import { type ConnectionSettings, type H2Stream, Http2Connection } from "./connection.ts";
import {
  type CallContext,
  type MethodDefinition,
  ServerCall,
  Status,
  type StatusObject,
} from "./grpc.ts";

/** Server options: connection settings plus the message size limit. */
export interface ServerOptions extends Partial<ConnectionSettings> {
  /** Largest request message accepted, bytes. */
  maxReceiveMessageLength?: number;
  /** Told of every failed TLS handshake, with the peer's `address:port`. */
  onTlsError?: (peer: string, error: Error) => void;
}

/** TLS material; with `ca`, clients must present a certificate it signed. */
export interface TlsOptions {
  cert: Uint8Array;
  key: Uint8Array;
  ca?: Uint8Array;
}

/** Where to listen: a TCP host and port, or a unix socket path. */
export type ListenTarget = { host: string; port: number } | { path: string };

type Handler = (
  call: ServerCall,
  callback?: (err: StatusObject | null, res?: unknown) => void,
) => void;

interface Route {
  method: MethodDefinition;
  handler: Handler;
}

const DEFAULT_MAX_RECEIVE = 4 << 20;

/** A gRPC server; see the module documentation. */
export class GrpcServer {
  readonly #routes = new Map<string, Route>();
  readonly #services = new Set<string>();
  readonly #options: ServerOptions;
  readonly #listeners: net.Server[] = [];
  readonly #connections = new Set<Http2Connection>();

  constructor(options: ServerOptions = {}) {
    this.#options = options;
  }

  /** Registers a service's methods (definitions from @grpc/proto-loader, handlers by name). */
  addService(
    definition: Record<string, MethodDefinition>,
    implementation: Record<string, (...args: any[]) => void>,
  ): void {
    for (const [name, method] of Object.entries(definition)) {
      const handler = implementation[name] ?? implementation[name[0].toLowerCase() + name.slice(1)];
      if (!handler) continue;
      this.#routes.set(method.path, { method, handler: handler as Handler });
      this.#services.add(method.path.slice(1, method.path.lastIndexOf("/")));
    }
  }

  /** Starts listening; resolves to the bound TCP port (0 for unix sockets). */
  listen(target: ListenTarget, tlsOptions?: TlsOptions): Promise<number> {
    const server = tlsOptions
      ? tls.createServer({
        cert: Buffer.from(tlsOptions.cert),
        key: Buffer.from(tlsOptions.key),
        ca: tlsOptions.ca ? Buffer.from(tlsOptions.ca) : undefined,
        requestCert: Boolean(tlsOptions.ca),
        rejectUnauthorized: Boolean(tlsOptions.ca),
        ALPNProtocols: ["h2"],
      })
      : net.createServer();
    server.on(tlsOptions ? "secureConnection" : "connection", (socket: net.Socket) => {
      this.#accept(socket);
    });
    // A failed TLS handshake is the client's problem; it must not end the server.
    server.on("tlsClientError", (error: Error, socket: net.Socket) => {
      // Deno's TLS socket leaves the address on the TCP socket under it.
      const tcp = socket.remoteAddress ? socket : (socket as { _parent?: net.Socket })._parent;
      const host = tcp?.remoteAddress ?? "unknown";
      const peer = host.includes(":")
        ? `[${host}]:${tcp?.remotePort}`
        : `${host}:${tcp?.remotePort}`;
      this.#options.onTlsError?.(peer, error);
    });
    this.#listeners.push(server);
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      const ready = () => {
        server.off("error", reject);
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : 0);
      };
      if ("path" in target) server.listen(target.path, ready);
      else server.listen(target.port, target.host, ready);
    });
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const peer = socket.remoteAddress
      ? `${
        socket.remoteFamily === "IPv6" ? "ipv6" : "ipv4"
      }:${socket.remoteAddress}:${socket.remotePort}`
      : "unix:";
    const ctx: CallContext = {
      peer,
      maxReceiveMessageLength: this.#options.maxReceiveMessageLength ?? DEFAULT_MAX_RECEIVE,
      // Only a certificate the handshake checked against the trusted CA names anyone.
      peerCertificate: socket instanceof tls.TLSSocket && socket.authorized
        ? socket.getPeerCertificate()
        : undefined,
    };
    const conn = new Http2Connection(
      socket as unknown as ConstructorParameters<typeof Http2Connection>[0],
      this.#options,
      (stream, headers) => this.#dispatch(stream, headers, ctx),
    );
    this.#connections.add(conn);
    conn.onClose(() => this.#connections.delete(conn));
  }

  #dispatch(stream: H2Stream, headers: [string, string][], ctx: CallContext): void {
    let path = "";
    for (const [name, value] of headers) if (name === ":path") path = value;
    const route = this.#routes.get(path);
    const method = route?.method ?? UNKNOWN_METHOD;
    const call = new ServerCall(stream, method, ctx);
    stream.onAbort = () => call.abort();
    const refusal = call.init(headers) ?? (route ? undefined : unknownMethod(path, this.#services));
    if (refusal) {
      call.sendStatus(refusal);
      return;
    }
    const { requestStream, responseStream } = method;
    const handler = route!.handler;
    if (responseStream) call.enableCutOff();
    const fail = (status: StatusObject) => {
      call.sendStatus(status);
      call.abort();
    };
    const callback = (err: StatusObject | null, res?: unknown) => {
      if (err) call.sendStatus(err);
      else {
        call.write(res);
        call.end();
      }
    };
    if (!requestStream) {
      // One request message, then the handler runs.
      let request: unknown;
      let count = 0;
      stream.onData = (data) => {
        try {
          for (const m of call.readMessages(data)) {
            request = m;
            count++;
          }
        } catch (status) {
          fail(status as StatusObject);
        }
      };
      stream.onEnd = () => {
        if (call.cancelled) return;
        if (count !== 1) {
          const details = count === 0
            ? "grpc: server received no request message"
            : "grpc: server received more than one request message for a unary call";
          fail({ code: count === 0 ? Status.INTERNAL : Status.UNIMPLEMENTED, details });
          return;
        }
        call.request = request;
        run(handler, call, responseStream ? undefined : callback);
      };
      return;
    }
    stream.onData = (data) => {
      try {
        call.deliver(call.readMessages(data));
      } catch (status) {
        fail(status as StatusObject);
      }
    };
    stream.onEnd = () => call.clientEnded();
    run(handler, call, responseStream ? undefined : callback);
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#connections.size;
  }

  /**
   * Stops accepting, sends GOAWAY on every connection, waits up to `graceMs`
   * for calls in flight, then closes what is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    const closed = this.#listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    for (const c of this.#connections) c.shutdown();
    const deadline = Date.now() + graceMs;
    while (this.#connections.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of [...this.#connections]) c.close();
    await Promise.all(closed);
  }
}

function run(
  handler: Handler,
  call: ServerCall,
  callback?: (err: StatusObject | null, res?: unknown) => void,
): void {
  try {
    handler(call, callback);
  } catch (err) {
    call.sendStatus({ code: Status.UNKNOWN, details: String((err as Error)?.message ?? err) });
  }
}

/** Used to answer a path no service has: messages are never decoded. */
const UNKNOWN_METHOD: MethodDefinition = {
  path: "",
  requestStream: true,
  responseStream: true,
  requestDeserialize: () => undefined,
  responseSerialize: () => new Uint8Array(0),
};

/** grpc-go's texts for an unknown service or method. */
function unknownMethod(path: string, services: Set<string>): StatusObject {
  const slash = path.lastIndexOf("/");
  const service = path.slice(1, slash);
  const method = path.slice(slash + 1);
  return {
    code: Status.UNIMPLEMENTED,
    details: services.has(service)
      ? `unknown method ${method} for service ${service}`
      : `unknown service ${service}`,
  };
}
