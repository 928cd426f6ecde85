/**
 * A token-checking front for a real PostgreSQL or MySQL/MariaDB server, standing in for RDS's IAM
 * login: it asks each client for a cleartext password, recomputes the token's SigV4 signature
 * with the test's own credentials and checks host:port, user, action, region, service and
 * expiry, then relays the connection to the upstream server (which lets the user in without a
 * password). A bad token gets the error RDS sends (PostgreSQL: `PAM authentication failed for
 * user "…"`, SQLSTATE 28P01; MySQL: error 1045 `Access denied for user …`).
 */
import { Buffer } from "node:buffer";
import { createHash, createHmac } from "node:crypto";

/** A credential the front knows: access key id → secret and optional session token. */
export interface FrontCredential {
  secret: string;
  sessionToken?: string;
}

export interface RdsFrontOptions {
  /** The wire protocol spoken; PostgreSQL unless told. */
  protocol?: "postgres" | "mysql";
  /** The host name clients dial (the token must name it with the front's port). */
  host: string;
  region: string;
  credentials: Record<string, FrontCredential>;
  upstreamPort: number;
}

/** One login the front saw. */
export interface FrontLogin {
  user: string;
  token: string;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** `undefined` when accepted, else why not. */
  refused?: string;
}

export interface RdsFront {
  port: number;
  logins: FrontLogin[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/** Starts the front on a free loopback port. */
export function startRdsFront(o: RdsFrontOptions): RdsFront {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const logins: FrontLogin[] = [];
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (o.protocol === "mysql" ? handleMysql : handle)(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        close(conn);
      });
    }
  })();

  async function handle(conn: Deno.Conn) {
    const r = new Reader(conn);
    let startup: Uint8Array;
    for (;;) {
      const len = (await r.read(4)).readUInt32BE(0);
      const body = await r.read(len - 4);
      const code = body.readUInt32BE(0);
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        await conn.write(new TextEncoder().encode("N"));
        continue;
      }
      startup = Buffer.concat([u32(len), body]);
      const params = body.subarray(4).toString().split("\0");
      const user = params[params.indexOf("user") + 1];
      await conn.write(Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 3])); // AuthenticationCleartextPassword
      const type = (await r.read(1))[0];
      const plen = (await r.read(4)).readUInt32BE(0);
      const token = (await r.read(plen - 4)).toString().replace(/\0$/, "");
      const refused = type === 0x70
        ? checkToken(token, user, `${o.host}:${port}`, o)
        : "no password";
      logins.push({ user, token, at: Date.now(), refused });
      if (refused) {
        await conn.write(errorResponse(`PAM authentication failed for user "${user}"`));
        return;
      }
      break;
    }
    const up = await Deno.connect({ hostname: "127.0.0.1", port: o.upstreamPort });
    await up.write(startup);
    await relay(conn, r, up, new Reader(up));
  }

  /**
   * MySQL: the upstream's greeting goes to the client; the client's handshake response is held
   * while the client is switched to `mysql_clear_password` and its token checked; then the held
   * response logs in upstream (the user has no password there) and the connection is relayed,
   * the upstream's answer renumbered to follow the exchange the client saw.
   */
  async function handleMysql(conn: Deno.Conn) {
    const up = await Deno.connect({ hostname: "127.0.0.1", port: o.upstreamPort });
    try {
      const upR = new Reader(up);
      const packet = async (r: Reader) => {
        const head = await r.read(4);
        return { seq: head[3], body: await r.read(head.readUIntLE(0, 3)) };
      };
      const send = (c: Deno.Conn, seq: number, body: Buffer) => {
        const head = Buffer.alloc(4);
        head.writeUIntLE(body.length, 0, 3);
        head[3] = seq;
        return c.write(Buffer.concat([head, body]));
      };
      const greeting = await packet(upR);
      await send(conn, greeting.seq, greeting.body);
      const r = new Reader(conn);
      const response = await packet(r);
      // HandshakeResponse41: flags(4) max-packet(4) charset(1) filler(23) user\0 …
      const user = response.body.subarray(32, response.body.indexOf(0, 32)).toString();
      await send(conn, response.seq + 1, Buffer.from("\xfemysql_clear_password\0", "latin1"));
      const reply = await packet(r);
      const token = reply.body.toString().replace(/\0$/, "");
      const refused = checkToken(token, user, `${o.host}:${port}`, o);
      logins.push({ user, token, at: Date.now(), refused });
      if (refused) {
        const msg = `Access denied for user '${user}'@'127.0.0.1' (using password: YES)`;
        await send(conn, reply.seq + 1, Buffer.from(`\xff\x15\x04#28000${msg}`, "latin1"));
        return;
      }
      await send(up, response.seq, response.body);
      const ok = await packet(upR);
      await send(conn, reply.seq + 1, ok.body);
      await relay(conn, r, up, upR);
    } finally {
      close(up);
    }
  }

  return {
    port,
    logins,
    close: async () => {
      listener.close();
      for (const c of conns) close(c);
      await serving.catch(() => {});
    },
  };
}

/** Relays client and upstream both ways, bytes already read first, until either side ends. */
async function relay(conn: Deno.Conn, connR: Reader, up: Deno.Conn, upR: Reader): Promise<void> {
  try {
    if (connR.rest().length) await up.write(connR.rest());
    if (upR.rest().length) await conn.write(upR.rest());
    await Promise.all([
      up.readable.pipeTo(conn.writable).catch(() => {}),
      conn.readable.pipeTo(up.writable).catch(() => {}),
    ]);
  } finally {
    close(up);
  }
}

function close(c: Deno.Conn): void {
  try {
    c.close();
  } catch { /* already closed */ }
}

/** When a token was signed (its `X-Amz-Date`), in ms since the epoch. */
export function signedAt(token: string): number {
  const m = /X-Amz-Date=(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z/.exec(token);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

/** Why `token` is not a valid RDS auth token for `user` at `hostPort`, or `undefined`. */
export function checkToken(
  token: string,
  user: string,
  hostPort: string,
  o: Pick<RdsFrontOptions, "region" | "credentials">,
  now = Date.now(),
): string | undefined {
  const slash = token.indexOf("/?");
  if (slash < 0) return "not a presigned URL";
  if (token.slice(0, slash) !== hostPort) return `signed for ${token.slice(0, slash)}`;
  const q = new Map<string, string>();
  for (const pair of token.slice(slash + 2).split("&")) {
    const eq = pair.indexOf("=");
    q.set(decodeURIComponent(pair.slice(0, eq)), decodeURIComponent(pair.slice(eq + 1)));
  }
  if (q.get("Action") !== "connect") return "action is not connect";
  if (q.get("DBUser") !== user) return `signed for user ${q.get("DBUser")}`;
  if (q.get("X-Amz-Algorithm") !== "AWS4-HMAC-SHA256") return "not SigV4";
  if (q.get("X-Amz-SignedHeaders") !== "host") return "signed headers are not host";
  if (q.get("X-Amz-Expires") !== "900") return "lifetime is not 900 s";
  const [akid, day, region, service, term] = (q.get("X-Amz-Credential") ?? "").split("/");
  const cred = o.credentials[akid];
  if (!cred) return `unknown access key ${akid}`;
  if (region !== o.region) return `signed for region ${region}`;
  if (service !== "rds-db" || term !== "aws4_request") return "wrong credential scope";
  const amzDate = q.get("X-Amz-Date") ?? "";
  if (!amzDate.startsWith(day)) return "date and scope disagree";
  const signed = signedAt(token);
  if (!(signed <= now + 60_000 && now <= signed + 900_000)) return "expired";
  if ((q.get("X-Amz-Security-Token") ?? "") !== (cred.sessionToken ?? "")) {
    return "session token mismatch";
  }
  const canonicalQuery = [...q.entries()]
    .filter(([k]) => k !== "X-Amz-Signature")
    .map(([k, v]) => [escape(k), escape(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  const canonicalRequest = [
    "GET",
    "/",
    canonicalQuery,
    `host:${hostPort}`,
    "",
    "host",
    sha256(""),
  ].join("\n");
  const scope = `${day}/${region}/rds-db/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonicalRequest)].join("\n");
  let key: Buffer = Buffer.from(`AWS4${cred.secret}`);
  for (const part of [day, region, "rds-db", "aws4_request"]) key = hmac(key, part);
  if (hmac(key, toSign).toString("hex") !== q.get("X-Amz-Signature")) return "bad signature";
  return undefined;
}

const escape = (s: string) =>
  encodeURIComponent(s).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const hmac = (key: Buffer, s: string) => createHmac("sha256", key).update(s).digest();
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};

function errorResponse(message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C28P01\0M${message}\0\0`);
  return Buffer.concat([Buffer.from("E"), u32(4 + fields.length), fields]);
}

/** Reads exact byte counts from a connection. */
class Reader {
  #conn: Deno.Conn;
  #buf = Buffer.alloc(0);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }
  async read(n: number): Promise<Buffer> {
    while (this.#buf.length < n) {
      const chunk = new Uint8Array(16384);
      const got = await this.#conn.read(chunk);
      if (got === null) throw new Error("client went away");
      this.#buf = Buffer.concat([this.#buf, chunk.subarray(0, got)]);
    }
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }
  rest(): Buffer {
    return this.#buf;
  }
}
