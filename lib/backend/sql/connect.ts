import { EndpointError } from "../errors.ts";
import type { SqlOptions } from "./dialect.ts";

/** How long to wait between start-up connection attempts. */
const RETRY_INTERVAL_MS = 1000;

/**
 * Connects at start-up, trying again while the database cannot be reached
 * (a log line per attempt) until `retryTimeout`; then, or at once for any
 * other error (bad credentials, say), fails with one line naming the endpoint
 * with its password masked.
 */
export async function connectWithRetry<T>(
  display: string,
  o: Pick<SqlOptions, "logger" | "retryTimeout">,
  attempt: () => Promise<T>,
  unreachable: (err: unknown) => boolean,
): Promise<T> {
  const deadline = Date.now() + o.retryTimeout;
  for (let n = 1;; n++) {
    try {
      return await attempt();
    } catch (err) {
      const reason = (err as Error)?.message ?? String(err);
      if (!unreachable(err) || Date.now() + RETRY_INTERVAL_MS > deadline) {
        throw new EndpointError(`failed to connect to datastore ${display}: ${reason}`);
      }
      o.logger.warn("datastore not reachable, retrying", {
        endpoint: display,
        attempt: n,
        error: reason,
      });
      await new Promise((r) => setTimeout(r, RETRY_INTERVAL_MS));
    }
  }
}

/**
 * TLS material named by file, read for a driver's TLS options; absent files are left out. A file
 * that cannot be read is an {@link EndpointError} naming it and the flags that may have named it
 * (on PostgreSQL the DSN's `sslrootcert`/`sslcert`/`sslkey` take their place).
 */
export function tlsFiles(
  ca?: string | null,
  cert?: string | null,
  key?: string | null,
): { ca?: string; cert?: string; key?: string } {
  const read = (path: string, what: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch (err) {
      const reason = String((err as Error)?.message ?? err).replace(/ \(os error.*$/s, "");
      throw new EndpointError(
        `cannot read the datastore TLS ${what} ${JSON.stringify(path)}: ${reason}`,
      );
    }
  };
  const out: { ca?: string; cert?: string; key?: string } = {};
  if (ca) out.ca = read(ca, "CA (--ca-file, sslrootcert)");
  if (cert) out.cert = read(cert, "certificate (--cert-file, sslcert)");
  if (key) out.key = read(key, "key (--key-file, sslkey)");
  return out;
}
