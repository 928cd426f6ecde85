/** Endpoint (DSN) parsing and driver selection, spec §1.3. */
import { LogBackend, type LogBackendOptions } from "./logstructured/backend.ts";
import { MemoryStore } from "./memory/store.ts";
import { openNats } from "./nats/backend.ts";
import { openSqlStore } from "./sql/store.ts";
import { type SqlEngine, type SqlOptions, TABLE_NAME } from "./sql/dialect.ts";
import { mysqlEngine } from "./sql/mysql.ts";
import { postgresEngine } from "./sql/postgres.ts";
import { sqliteEngine } from "./sql/sqlite.ts";
import type { Backend } from "./types.ts";
import { EndpointError } from "./errors.ts";

/** A `<scheme>://<rest>` endpoint split at the first `://`. */
export interface Endpoint {
  scheme: string;
  dsn: string;
}

export { EndpointError };

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

export interface BackendOptions extends LogBackendOptions, Omit<SqlOptions, "logger" | "metrics"> {
  endpoint: string;
}

/** An opened backend; `leaderElect` is what k3s-style embedders expect. */
export interface OpenedBackend {
  backend: Backend;
  leaderElect: boolean;
}

type Factory = (dsn: string, o: BackendOptions) => Promise<OpenedBackend>;

/** A SQL engine on the shared log: one line per scheme below. */
function sql(engine: SqlEngine, leaderElect: boolean): Factory {
  return async (dsn, o) => {
    if (!TABLE_NAME.test(o.tableName)) {
      throw new EndpointError(
        `invalid table name "${o.tableName}": use lower-case letters, digits and _ (at most 48)`,
      );
    }
    const store = await openSqlStore(engine, dsn, o);
    return { backend: new LogBackend(store, o), leaderElect };
  };
}

const FACTORIES: Record<string, Factory> = {
  sqlite: sql(sqliteEngine(false), false),
  litestream: sql(sqliteEngine(true), false),
  postgres: sql(postgresEngine, true),
  postgresql: sql(postgresEngine, true),
  mysql: sql(mysqlEngine, true),
  memory: (_dsn, o) =>
    Promise.resolve({ backend: new LogBackend(new MemoryStore(), o), leaderElect: false }),
  nats: openNats,
  jetstream: openNats,
};

/** Opens (connects to, and readies) the backend an endpoint names. */
export async function openBackend(o: BackendOptions): Promise<OpenedBackend> {
  const { scheme, dsn } = parseEndpoint(o.endpoint);
  const factory = FACTORIES[scheme];
  if (!factory) throw new EndpointError(`unknown driver: ${scheme}`);
  return await factory(dsn, o);
}
