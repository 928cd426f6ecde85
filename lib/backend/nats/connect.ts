/**
 * Opens the NATS connection an endpoint describes (spec §7.1): servers and
 * credentials from the URL or a NATS CLI context file, a creds file, backend
 * TLS files, unlimited reconnects, and connection events logged.
 *
 * @module
 */
import {
  connect,
  credsAuthenticator,
  type NatsConnection,
  type NodeConnectionOptions,
} from "@nats-io/transport-node";
import type { Logger } from "../../log/mod.ts";
import type { NatsOptions, NatsTls } from "./options.ts";

/** The fields of a `nats context` JSON file this backend uses. */
interface Context {
  url?: string;
  user?: string;
  password?: string;
  token?: string;
  creds?: string;
  cert?: string;
  key?: string;
  ca?: string;
}

/** Connection options from the endpoint, a context file and the TLS flags (which win). */
export async function connectionOptions(
  o: NatsOptions,
  tls: Partial<NatsTls>,
): Promise<NodeConnectionOptions> {
  const ctx: Context = o.contextFile ? JSON.parse(await Deno.readTextFile(o.contextFile)) : {};
  const opts: NodeConnectionOptions = {
    servers: o.contextFile ? (ctx.url ?? "").split(",").filter((s) => s !== "") : o.servers,
    name: `kine using bucket: ${o.bucket}`,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    // Otherwise every request (a linearizable read's stream info, a lease step) builds two errors
    // with stack traces up front, in case it fails; a failure is still reported, without them.
    noAsyncTraces: true,
    user: o.user ?? ctx.user,
    pass: o.pass ?? ctx.password,
    token: o.token ?? ctx.token,
  };
  const creds = o.credsFile ?? ctx.creds;
  if (creds) opts.authenticator = credsAuthenticator(await Deno.readFile(creds));
  const caFile = tls.caFile || ctx.ca;
  const certFile = tls.certFile || ctx.cert;
  const keyFile = tls.keyFile || ctx.key;
  if (caFile || certFile || keyFile) opts.tls = { caFile, certFile, keyFile };
  return opts;
}

/** Connects, and logs disconnects, reconnects and asynchronous errors until closed. */
export async function connectNats(
  o: NatsOptions,
  tls: Partial<NatsTls>,
  logger: Logger,
): Promise<NatsConnection> {
  const nc = await connect(await connectionOptions(o, tls));
  (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case "disconnect":
          logger.warn("NATS disconnected", { server: s.server });
          break;
        case "reconnect":
          logger.info("NATS reconnected", { server: s.server });
          break;
        case "update":
          logger.info("NATS discovered servers", { added: s.added, deleted: s.deleted });
          break;
        case "error":
          logger.warn("NATS error", { error: String(s.error) });
          break;
      }
    }
  })().catch(() => {});
  return nc;
}
