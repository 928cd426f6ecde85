/**
 * AWS RDS IAM authentication: a fresh SigV4-presigned `connect` token per database login, used as
 * the connection's password. The AWS SDK is imported only when the provider is in use, so a
 * daemon with static passwords never loads it.
 *
 * @module
 */

/** An error of the RDS token provider; its text never contains a token or a secret key. */
export class RdsAuthError extends Error {
  override name = "RdsAuthError";
}

/** Where a token is valid: exactly the `host:port` the driver dials and the DSN user. */
export interface RdsTarget {
  host: string;
  port: number;
  user: string;
}

/** Makes a token for one login. Each call signs anew (tokens live 15 minutes). */
export type TokenProvider = () => Promise<string>;

// The fork's pattern: the label right before `rds.amazonaws.com` is the region.
const RDS_HOST = /([^.]+)\.rds\.amazonaws\.com\.?$/i;

/** The region named by an `<instance>.<region>.rds.amazonaws.com` host, if it is one. */
export function regionFromHost(host: string): string | undefined {
  return RDS_HOST.exec(host)?.[1]?.toLowerCase();
}

/**
 * A token provider for `target`. Credentials come from the AWS SDK's default chain (environment
 * incl. `AWS_SESSION_TOKEN`, shared config/credentials files and `AWS_PROFILE`, web identity,
 * container and instance metadata), resolved on first use and refreshed by the SDK when they
 * expire. The region is the host's when it is an RDS name, else the AWS configuration's.
 */
export function rdsTokenProvider(target: RdsTarget): TokenProvider {
  let signer: Promise<{ getAuthToken(): Promise<string> }> | undefined;
  const load = async () => {
    const [{ Signer }, { fromNodeProviderChain }] = await Promise.all([
      import("@aws-sdk/rds-signer"),
      import("@aws-sdk/credential-providers"),
    ]);
    return new Signer({
      hostname: target.host,
      port: target.port,
      username: target.user,
      region: regionFromHost(target.host),
      credentials: fromNodeProviderChain(),
    });
  };
  return async () => {
    signer ??= load();
    try {
      return await (await signer).getAuthToken();
    } catch (err) {
      // SDK messages name the missing piece (credentials, region) and carry no secret.
      throw new RdsAuthError(
        `aws identity provider: cannot sign an RDS auth token for ${target.user}@${target.host}:${target.port}: ${
          (err as Error)?.message ?? String(err)
        }`,
      );
    }
  };
}
