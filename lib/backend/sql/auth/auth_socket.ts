/**
 * Kerberos and RDS-token logins for `npm:postgres`, beneath the driver: a `socket` option that
 * dials the server (and negotiates TLS when asked), then answers AuthenticationGSS (`R`, 7) and
 * AuthenticationGSSContinue (`R`, 8) with GSSResponse (`p`) messages, which postgres.js cannot
 * do, and AuthenticationCleartextPassword (`R`, 3) with a freshly signed token for exactly the
 * host and port it dialled. A failure to get a ticket or a token ends the connection with an
 * error the driver reports (a throwing password function would crash the process instead). The
 * driver sees everything else, from AuthenticationOk on, unchanged; it is given `ssl: false`
 * because TLS is already underneath.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { Duplex } from "node:stream";
import tls from "node:tls";
import type { GssInitiator } from "./kerberos.ts";
import type { TokenProvider } from "./rds.ts";

/** TLS for the connection: off, tried then plain (`prefer`), or required with these options. */
export type SocketTls = false | "prefer" | tls.ConnectionOptions;

/** Where and how to dial, and how to log in. */
export interface AuthSocketOptions {
  host: string;
  port: number;
  tls: SocketTls;
  /** Kerberos: answers the server's GSS requests. */
  gss?: GssInitiator;
  /** RDS IAM: answers the server's cleartext password request with a new token. */
  password?: TokenProvider;
  /** Gives up dialling and TLS set-up after this long. */
  connectTimeoutMs: number;
}

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 4, 210, 22, 47]); // length 8, code 80877103

/** The `socket` option for postgres.js: each call opens one connection and logs it in. */
export function authSocket(o: AuthSocketOptions): () => Promise<Duplex> {
  return async () => new AuthBridge(await dial(o), o);
}

async function dial(o: AuthSocketOptions): Promise<net.Socket> {
  const raw = net.connect({ host: o.host, port: o.port });
  const timer = setTimeout(
    () => raw.destroy(new Error(`connect to ${o.host}:${o.port} timed out`)),
    o.connectTimeoutMs,
  );
  try {
    await event(raw, "connect");
    if (o.tls === false) return raw;
    raw.write(SSL_REQUEST);
    const answer = await event<Buffer>(raw, "data");
    if (answer[0] !== 0x53) { // 'S'
      if (o.tls === "prefer") return raw;
      throw new Error(`server ${o.host}:${o.port} does not support SSL, but SSL was required`);
    }
    const secure = tls.connect({
      servername: net.isIP(o.host) ? undefined : o.host,
      ...(o.tls === "prefer" ? { rejectUnauthorized: false } : o.tls),
      socket: raw,
    });
    await event(secure, "secureConnect");
    return secure;
  } catch (err) {
    raw.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function event<T = void>(s: net.Socket, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onError = (err: Error) => {
      s.off(name, onEvent);
      reject(err);
    };
    const onEvent = (v: T) => {
      s.off("error", onError);
      resolve(v);
    };
    s.once(name, onEvent);
    s.once("error", onError);
  });
}

/**
 * The driver's side of the connection. Until AuthenticationOk it reads the server's messages
 * itself and keeps the authentication requests it answers; after that it only relays.
 */
class AuthBridge extends Duplex {
  #inner: net.Socket;
  #o: AuthSocketOptions;
  #pending: Buffer = Buffer.alloc(0);
  #authenticated = false;
  #queue: Promise<void> = Promise.resolve();
  #ctx: ReturnType<GssInitiator> | undefined;

  constructor(inner: net.Socket, o: AuthSocketOptions) {
    super();
    this.#inner = inner;
    this.#o = o;
    inner.on("data", (chunk: Buffer) => {
      if (this.#authenticated) {
        if (!this.push(chunk)) inner.pause();
        return;
      }
      this.#pending = Buffer.concat([this.#pending, chunk]);
      this.#queue = this.#queue.then(() => this.#drainAuth()).catch((err) => {
        this.destroy(err);
      });
    });
    inner.on("end", () => this.push(null));
    inner.on("error", (err) => this.destroy(err));
    inner.on("close", () => this.destroy());
  }

  /** postgres.js writes a Terminate only to an `open` socket. */
  get readyState(): string {
    return this.#inner.readyState;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.#inner.setKeepAlive(enable, delay);
    return this;
  }

  override _write(chunk: Buffer, _enc: string, cb: (err?: Error | null) => void): void {
    this.#inner.write(chunk, cb);
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#inner.destroy();
    cb(err);
  }

  /** Handles every complete message read so far, in order, while authentication runs. */
  async #drainAuth(): Promise<void> {
    while (!this.#authenticated && this.#pending.length >= 5) {
      const end = 1 + this.#pending.readUInt32BE(1);
      if (this.#pending.length < end) return;
      const msg = this.#pending.subarray(0, end);
      const code = msg[0] === 0x52 && end >= 9 ? msg.readInt32BE(5) : -1; // 'R'
      if (code === 7 || code === 8) {
        this.#pending = this.#pending.subarray(end);
        await this.#gss(code === 7 ? "" : msg.subarray(9).toString("base64"));
        continue;
      }
      if (code === 3 && this.#o.password) {
        this.#pending = this.#pending.subarray(end);
        this.#send(Buffer.from(`${await this.#o.password()}\0`));
        continue;
      }
      if (code === 0) {
        // AuthenticationOk: from here on the driver reads the connection itself.
        this.#authenticated = true;
        const rest = this.#pending;
        this.#pending = Buffer.alloc(0);
        this.push(rest);
        return;
      }
      this.#pending = this.#pending.subarray(end);
      this.push(msg); // errors, other auth requests: the driver reports them
    }
  }

  async #gss(challenge: string): Promise<void> {
    if (!this.#o.gss) {
      throw new Error(
        "the server asks for Kerberos (GSSAPI) authentication, but the DSN sets neither " +
          "krb5_keytab nor krb5_ccache (nor is KRB5_KTNAME set)",
      );
    }
    this.#ctx ??= this.#o.gss(this.#o.host);
    const token = await (await this.#ctx).step(challenge);
    if (token) this.#send(Buffer.from(token, "base64")); // the mutual-auth reply needs no answer
  }

  /** Sends a PasswordMessage/GSSResponse (`p`) carrying `body`. */
  #send(body: Buffer): void {
    const msg = Buffer.alloc(5 + body.length);
    msg[0] = 0x70; // 'p'
    msg.writeUInt32BE(4 + body.length, 1);
    body.copy(msg, 5);
    this.#inner.write(msg);
  }
}
