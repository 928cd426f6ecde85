/**
 * The MySQL driver's authentication hook for `--identity-provider aws`: RDS's IAM plugin asks
 * the client to switch to `mysql_clear_password`, so the token travels as a cleartext password.
 * kine sends it only over TLS, unless the DSN opts out with `allowCleartextPasswords=true` (the
 * Go MySQL driver's name for the same consent).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { ConnectionOptions } from "mysql2";
import { AuthConfigError } from "./identity.ts";
import { rdsTokenProvider } from "./rds.ts";

/**
 * Returns `options` with a `mysql_clear_password` plugin that signs a fresh token for each login
 * (for `options.host`, `options.port`, `options.user`). Throws at start-up when TLS is off and
 * cleartext passwords were not explicitly allowed.
 */
export function applyMysqlAuth(
  options: ConnectionOptions,
  identityProvider: string,
  allowCleartextPasswords: boolean,
): ConnectionOptions {
  if (identityProvider !== "aws") return options;
  if (!options.ssl && !allowCleartextPasswords) {
    throw new AuthConfigError(
      "--identity-provider aws with MySQL sends the RDS auth token as a cleartext password, " +
        "so kine requires TLS (tls=true in the DSN, or --ca-file/--cert-file/--key-file); " +
        "add allowCleartextPasswords=true to the DSN to send it without TLS anyway",
    );
  }
  const token = rdsTokenProvider({
    host: options.host ?? "localhost",
    port: options.port ?? 3306,
    user: options.user ?? "",
  });
  return {
    ...options,
    authPlugins: {
      ...options.authPlugins,
      mysql_clear_password: () => async () => Buffer.from(`${await token()}\0`),
    },
  };
}
