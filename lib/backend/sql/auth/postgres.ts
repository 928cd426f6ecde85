/**
 * The PostgreSQL driver's authentication hook. The driver removes kine's Kerberos parameters
 * from the DSN first (`takeKerberosParams`), parses the rest as usual, then asks
 * {@link postgresLogin} for the postgres.js options that log its connections in: with Kerberos
 * or `--identity-provider aws`, a socket that performs the login beneath the driver
 * (`auth_socket.ts`); otherwise nothing, and the password path is exactly as before.
 *
 * @module
 */
import { AuthConfigError, checkIdentityProvider } from "./identity.ts";
import { authSocket, type SocketTls } from "./auth_socket.ts";
import { prepareKerberos } from "./kerberos.ts";
import type { KerberosSettings } from "./kerberos_dsn.ts";
import { rdsTokenProvider } from "./rds.ts";

/** What the hook needs besides the connection target. */
export interface AuthContext {
  /** `--identity-provider`: `""` or `aws`. */
  identityProvider: string;
  /** Reads the process environment (`KRB5_KTNAME`, `KRB5_CONFIG`). */
  env: (name: string) => string | undefined;
  /** Sets a process environment variable (MIT krb5 reads its settings from there). */
  setEnv: (name: string, value: string) => void;
}

/** The process's own environment, for {@link AuthContext}. */
export const processEnv: Pick<AuthContext, "env" | "setEnv"> = {
  env: (name) => Deno.env.get(name),
  setEnv: (name, value) => Deno.env.set(name, value),
};

/** The server as the driver's parsed DSN names it. */
export interface PgTarget {
  host: string;
  port: number;
  /** The role (for Kerberos without `@REALM`); RDS tokens are signed for it. */
  user: string;
  /** postgres.js's `ssl` value the driver derived from `sslmode` and the TLS files. */
  ssl: unknown;
  /** Seconds, as postgres.js's `connect_timeout`. */
  connectTimeout: number;
}

/** postgres.js options to merge over the driver's own. */
export interface PgLoginOptions {
  socket?: () => Promise<unknown>;
  ssl?: false;
}

/**
 * The login options for `target`. Kerberos set-up errors (unreadable keytab, principal not in
 * it, addon missing) are thrown here, at start-up, naming the path or principal.
 */
export async function postgresLogin(
  target: PgTarget,
  kerberos: KerberosSettings | undefined,
  ctx: AuthContext,
): Promise<PgLoginOptions> {
  const invalid = checkIdentityProvider(ctx.identityProvider);
  if (invalid) throw new AuthConfigError(invalid);
  if (!kerberos && ctx.identityProvider === "") return {};
  if (target.host.includes(",")) {
    throw new AuthConfigError(
      "Kerberos and --identity-provider need exactly one database host: " +
        "tickets and tokens are issued for one server",
    );
  }
  const { host, port, user } = target;
  return {
    socket: authSocket({
      host,
      port,
      tls: tlsFor(target.ssl),
      gss: kerberos && await prepareKerberos(kerberos, ctx.env, ctx.setEnv),
      password: ctx.identityProvider === "aws" ? rdsTokenProvider({ host, port, user }) : undefined,
      connectTimeoutMs: 1000 * target.connectTimeout,
    }),
    ssl: false, // TLS, when wanted, is set up by the socket underneath the driver
  };
}

/** postgres.js's reading of its `ssl` option, for the socket. */
function tlsFor(ssl: unknown): SocketTls {
  if (ssl === undefined || ssl === null || ssl === false || ssl === "disable" || ssl === "false") {
    return false;
  }
  if (ssl === "prefer" || ssl === "allow") return "prefer";
  if (ssl === true || ssl === "require" || ssl === "true") return { rejectUnauthorized: false };
  if (typeof ssl === "object") return ssl as SocketTls;
  return {}; // verify-ca, verify-full: verify the server's certificate
}
