import type { SqlConn, SqlOptions, SqlParam } from "./dialect.ts";

type Call<T> = (name: string, sql: string, params: SqlParam[]) => T;
type Observed = Pick<
  SqlOptions,
  "metrics" | "logger" | "slowSqlThreshold" | "slowSqlWarningThreshold"
>;

/** Counts and times one statement (or pipeline) by name, and logs it when slow. */
function recorder(o: Observed) {
  return (name: string, started: number, error: string) => {
    const ms = performance.now() - started;
    o.metrics?.sqlTotal.labels(name, error).inc();
    o.metrics?.sqlTime.labels(name, error).observe(ms / 1000);
    if (o.slowSqlThreshold > 0 && ms >= o.slowSqlThreshold) {
      const fields = { name, duration: `${Math.round(ms)}ms` };
      if (o.slowSqlWarningThreshold > 0 && ms >= o.slowSqlWarningThreshold) {
        o.logger.warn("Slow SQL", fields);
      } else o.logger.info("Slow SQL", fields);
    }
  };
}

/** Runs `fn` (a pipeline of statements, one round trip), counted and timed as `name`. */
export async function measure<T>(
  o: Observed,
  code: (err: unknown) => string,
  name: string,
  fn: () => Promise<T>,
): Promise<T> {
  const done = recorder(o);
  const started = performance.now();
  try {
    const result = await fn();
    done(name, started, "");
    return result;
  } catch (err) {
    done(name, started, code(err) || "error");
    throw err;
  }
}

/**
 * Wraps a connection so that every statement is counted and timed by name in
 * `kine_sql_total`/`kine_sql_time_seconds` (with the engine's error code on
 * failure) and statements over the slow-SQL thresholds are logged by name —
 * never with their parameters, which may hold values or secrets. Synchronous
 * engines stay synchronous.
 */
export function instrument(
  conn: SqlConn,
  o: Observed,
  code: (err: unknown) => string,
): SqlConn {
  const done = recorder(o);
  const wrap = <T>(call: Call<T>): Call<T> => (name, sql, params) => {
    const started = performance.now();
    let result: T;
    try {
      result = call(name, sql, params);
    } catch (err) {
      done(name, started, code(err) || "error");
      throw err;
    }
    if (result instanceof Promise) {
      return result.then(
        (v) => {
          done(name, started, "");
          return v;
        },
        (err) => {
          done(name, started, code(err) || "error");
          throw err;
        },
      ) as T;
    }
    done(name, started, "");
    return result;
  };
  const wrapped: SqlConn = { all: wrap(conn.all.bind(conn)), run: wrap(conn.run.bind(conn)) };
  if (conn.send) {
    const send = conn.send.bind(conn);
    wrapped.send = (name, sql) => {
      send(name, sql);
      o.metrics?.sqlTotal.labels(name, "").inc();
    };
  }
  return wrapped;
}
