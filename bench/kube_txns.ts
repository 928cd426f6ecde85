/**
 * kube-apiserver's write txns as the backend receives them, and a quiet SQL
 * store to run them on: shared by bench/round_trips.ts and
 * tests/round_trips_test.ts.
 *
 * @module
 */
import { openSqlStore, type SqlStore } from "../lib/backend/sql/store.ts";
import type { SqlEngine } from "../lib/backend/sql/dialect.ts";
import { createLogger, type Logger } from "../lib/log/mod.ts";
import { type Op, plainRange, type Txn } from "../lib/backend/types.ts";

const quiet = { writeSync: (b: Uint8Array) => b.length };

/** A logger that writes nothing. */
export const silent: Logger = createLogger({ stdout: quiet, stderr: quiet });

/** A plain put of `key`. */
export const putOp = (key: string, value: Uint8Array, prevKv = false): Op => ({
  type: "put",
  key,
  value,
  lease: 0,
  prevKv,
  ignoreValue: false,
  ignoreLease: false,
});

/** A delete of `key` alone. */
export const deleteOp = (key: string): Op => ({ type: "delete", key, end: "", prevKv: false });

/** kube-apiserver's create (`rev` 0), update and delete (`rev` = the key's mod revision). */
export const kubeTxn = (key: string, rev: number, write: Op): Txn => ({
  compare: [{ key, end: "", target: "mod", result: "equal", operand: rev }],
  success: [write],
  failure: [{ type: "range", request: plainRange(key, "") }],
});

/** Opens a SQL store with at most `maxOpen` connections, logging nothing. */
export function openQuietStore(engine: SqlEngine, dsn: string, maxOpen = 1): Promise<SqlStore> {
  return openSqlStore(engine, dsn, {
    tls: { caFile: "", certFile: "", keyFile: "", skipVerify: false },
    pool: { maxIdle: maxOpen, maxOpen, maxLifetime: 0, maxIdleTime: 0 },
    slowSqlThreshold: 0,
    slowSqlWarningThreshold: 0,
    tableName: "kine",
    retryTimeout: 5000,
    identityProvider: "",
    logger: silent,
  });
}
