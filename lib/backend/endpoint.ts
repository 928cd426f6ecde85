/** Endpoint (DSN) parsing and driver selection, spec §1.3. */
import { LogBackend, type LogBackendOptions } from "./logstructured/backend.ts";
import { MemoryStore } from "./memory/store.ts";
import { SqlStore } from "./sql/store.ts";
import { parseSqliteDsn, sqliteDialect, SqliteDriver } from "./sql/sqlite.ts";
import type { Backend } from "./types.ts";

/** A `<scheme>://<rest>` endpoint split at the first `://`. */
export interface Endpoint {
  scheme: string;
  dsn: string;
}

/** An endpoint error whose text may be shown as is (it never echoes credentials). */
export class EndpointError extends Error {}

export function parseEndpoint(endpoint: string): Endpoint {
  if (endpoint === "") return { scheme: "sqlite", dsn: "" };
  const i = endpoint.indexOf("://");
  if (i < 0) {
    throw new EndpointError(
      "invalid datastore endpoint; endpoint should be a DSN URI in the format <scheme>://<authority>",
    );
  }
  return { scheme: endpoint.slice(0, i), dsn: endpoint.slice(i + 3) };
}

export interface BackendOptions extends LogBackendOptions {
  endpoint: string;
}

/** Backends that belong to later releases of this project. */
const PLANNED = new Set(["postgres", "postgresql", "mysql", "nats", "jetstream"]);

/** Opens the backend an endpoint names; `leaderElect` is what k3s-style embedders expect. */
export function openBackend(o: BackendOptions): { backend: Backend; leaderElect: boolean } {
  const { scheme, dsn } = parseEndpoint(o.endpoint);
  switch (scheme) {
    case "sqlite":
    case "litestream": {
      let options;
      try {
        options = parseSqliteDsn(dsn, scheme === "litestream");
      } catch (err) {
        throw new EndpointError(`failed to create driver for endpoint: ${(err as Error).message}`);
      }
      const driver = new SqliteDriver(options, o.logger, o.metrics);
      const store = new SqlStore(sqliteDialect, driver);
      return { backend: new LogBackend(store, o), leaderElect: false };
    }
    case "memory":
      return { backend: new LogBackend(new MemoryStore(), o), leaderElect: false };
    default:
      if (PLANNED.has(scheme)) {
        throw new EndpointError(`driver ${scheme} is not available in this version of kine`);
      }
      throw new EndpointError(`unknown driver: ${scheme}`);
  }
}
