/**
 * The MySQL driver's authentication hook for `--identity-provider aws`: RDS's IAM plugin asks
 * the client to switch to `mysql_clear_password`, so the token travels as a cleartext password.
 * kine sends it only over TLS (or a unix socket), unless the DSN opts out with
 * `allowCleartextPasswords=true` (the Go MySQL driver's name for the same consent).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "mysql2";
import { AuthConfigError } from "./identity.ts";
import { rdsTokenProvider } from "./rds.ts";

/** The server and transport as the driver's parsed DSN names them. */
export interface MysqlTarget {
  host?: string;
  port?: number;
  user: string;
  ssl?: unknown;
  socketPath?: string;
}

/**
 * mysql2 options to merge over the driver's own: with `aws`, a `mysql_clear_password` plugin
 * that signs a fresh token for each login. Throws at start-up when the token would cross the
 * network in clear without the DSN's explicit consent.
 */
export function mysqlLogin(
  target: MysqlTarget,
  identityProvider: string,
  allowCleartextPasswords: boolean,
): Pick<ConnectionOptions, "authPlugins"> {
  if (identityProvider !== "aws") return {};
  if (!target.ssl && !target.socketPath && !allowCleartextPasswords) {
    throw new AuthConfigError(
      "--identity-provider aws with MySQL sends the RDS auth token as a cleartext password, " +
        "so kine requires TLS (tls=true in the DSN, or --ca-file/--cert-file/--key-file); " +
        "add allowCleartextPasswords=true to the DSN to send it without TLS anyway",
    );
  }
  const token = rdsTokenProvider({
    host: target.host ?? "localhost",
    port: target.port ?? 3306,
    user: target.user,
  });
  return {
    authPlugins: {
      mysql_clear_password: () => async () => Buffer.from(`${await token()}\0`),
    },
  };
}
