/**
 * Endpoint (DSN) parsing and driver selection, spec §1.3. Each driver, with its npm packages, is
 * imported only when its scheme is used: serving SQLite loads neither postgres.js, mysql2 nor the
 * NATS client.
 *
 * @module
 */
import { LogBackend, type LogBackendOptions } from "./logstructured/backend.ts";
import { type SqlEngine, type SqlOptions, TABLE_NAME } from "./sql/dialect.ts";
import type { Backend } from "./types.ts";
import { EndpointError } from "./errors.ts";
import { maskEndpoint } from "./mask.ts";

/** A `<scheme>://<rest>` endpoint split at the first `://`. */
export interface Endpoint {
  scheme: string;
  dsn: string;
}

export { EndpointError, maskEndpoint };

/** Splits an endpoint at its scheme; `""` is SQLite at the default path. */
export function parseEndpoint(endpoint: string): Endpoint {
  if (endpoint === "") return { scheme: "sqlite", dsn: "" };
  const i = endpoint.indexOf("://");
  if (i < 0) {
    throw new EndpointError(
      `invalid datastore endpoint ${
        JSON.stringify(maskEndpoint(endpoint))
      }; endpoint should be a DSN URI in the format <scheme>://<authority>`,
    );
  }
  return { scheme: endpoint.slice(0, i), dsn: endpoint.slice(i + 3) };
}

export interface BackendOptions extends LogBackendOptions, Omit<SqlOptions, "logger" | "metrics"> {
  endpoint: string;
}

/** What the start-up line says about the store. */
export interface StoreDescription {
  /** `sqlite`, `postgres`, `mysql`, `memory` or `nats`. */
  engine: string;
  /** The endpoint with its credentials masked. */
  endpoint: string;
  /** The database file, database name, or NATS bucket. */
  database: string;
}

/** An opened backend; `leaderElect` is what k3s-style embedders expect. */
export interface OpenedBackend {
  backend: Backend;
  leaderElect: boolean;
  /** Which store this is, for the start-up line. */
  description?: StoreDescription;
}

/**
 * Parameters a DSN carries that nothing reads: upstream's SQLite and NATS drivers ignore them
 * silently, so kine starts too, but says so (a typo would otherwise go unnoticed). On MySQL
 * upstream sends them as session variables, which the server may refuse; kine warns.
 */
function warnUnknown(o: BackendOptions, unknown: readonly string[], known: readonly string[]) {
  if (unknown.length === 0) return;
  o.logger.warn("ignoring unknown --endpoint parameters", {
    parameters: unknown.join(","),
    known: known.join(","),
  });
}

type Factory = (dsn: string, o: BackendOptions) => Promise<OpenedBackend>;

/** One SQL engine, loaded on use, and what its DSN names. */
interface SqlDriverModule {
  engine: SqlEngine;
  describe(dsn: string, o: BackendOptions): Omit<StoreDescription, "engine">;
}

/** A SQL engine on the shared log: one line per scheme below. */
function sql(load: () => Promise<SqlDriverModule>, leaderElect: boolean): Factory {
  return async (dsn, o) => {
    if (!TABLE_NAME.test(o.tableName)) {
      throw new EndpointError(
        `invalid table name "${o.tableName}" (--table-name): use lower-case letters, digits and _ (at most 48)`,
      );
    }
    const [{ engine, describe }, { openSqlStore }] = await Promise.all([
      load(),
      import("./sql/store.ts"),
    ]);
    const store = await openSqlStore(engine, dsn, o);
    const description = { engine: engine.dialect.name, ...describe(dsn, o) };
    return { backend: new LogBackend(store, o), leaderElect, description };
  };
}

const sqlite = (litestream: boolean) =>
  sql(async () => {
    const m = await import("./sql/sqlite.ts");
    return {
      engine: m.sqliteEngine(litestream),
      describe: (dsn, o) => {
        const parsed = m.parseSqliteDsn(dsn, litestream);
        warnUnknown(o, parsed.unknown, m.SQLITE_PARAMETERS);
        return { endpoint: maskEndpoint(o.endpoint), database: parsed.path };
      },
    };
  }, false);

const postgres = sql(async () => {
  const m = await import("./sql/postgres.ts");
  return {
    engine: m.postgresEngine,
    describe: (dsn, o) => {
      const s = m.parsePostgresDsn(dsn, o.tls);
      return { endpoint: s.display, database: s.database };
    },
  };
}, true);

/** The MySQL DSN parameters `parseMysqlDsn` reads. */
const MYSQL_PARAMETERS = ["allowCleartextPasswords", "timeout", "tls"];

const mysql = sql(async () => {
  const m = await import("./sql/mysql.ts");
  return {
    engine: m.mysqlEngine,
    describe: (dsn, o) => {
      const s = m.parseMysqlDsn(dsn, o.tls);
      const q = dsn.indexOf("?");
      const given = q < 0 ? [] : [...new Set(new URLSearchParams(dsn.slice(q + 1)).keys())];
      warnUnknown(o, given.filter((p) => !MYSQL_PARAMETERS.includes(p)), MYSQL_PARAMETERS);
      return { endpoint: `mysql://${s.display}`, database: s.database };
    },
  };
}, true);

const nats: Factory = async (dsn, o) => {
  const [{ openNats }, { NATS_PARAMETERS, parseNatsEndpoint }] = await Promise.all([
    import("./nats/backend.ts"),
    import("./nats/options.ts"),
  ]);
  const opened = await openNats(dsn, o);
  const { bucket, unknown } = parseNatsEndpoint(o.endpoint);
  warnUnknown(o, unknown, NATS_PARAMETERS);
  const database = `bucket ${bucket}`;
  return {
    ...opened,
    description: { engine: "nats", endpoint: maskEndpoint(o.endpoint), database },
  };
};

const FACTORIES: Record<string, Factory> = {
  sqlite: sqlite(false),
  litestream: sqlite(true),
  postgres,
  postgresql: postgres,
  mysql,
  memory: async (_dsn, o) => {
    const { MemoryStore } = await import("./memory/store.ts");
    return {
      backend: new LogBackend(new MemoryStore(), o),
      leaderElect: false,
      description: { engine: "memory", endpoint: "memory://", database: "(process memory)" },
    };
  },
  nats,
  jetstream: nats,
};

/** Every scheme `--endpoint` accepts. */
export const SCHEMES: readonly string[] = Object.keys(FACTORIES);

/** Opens (connects to, and readies) the backend an endpoint names. */
export async function openBackend(o: BackendOptions): Promise<OpenedBackend> {
  const { scheme, dsn } = parseEndpoint(o.endpoint);
  const factory = FACTORIES[scheme];
  if (!factory) {
    throw new EndpointError(
      `unknown driver ${JSON.stringify(scheme)} in --endpoint: valid schemes are ${
        SCHEMES.join(", ")
      }`,
    );
  }
  return await factory(dsn, o);
}
