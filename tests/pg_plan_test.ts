/**
 * The plan PostgreSQL makes of a kube batch (`keyTxnSetStatement`): each
 * key's latest row found through an index, never a scan of the whole table,
 * whose cost would grow with the log.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { Statements } from "../lib/backend/sql/dialect.ts";
import { postgresDialect } from "../lib/backend/sql/postgres.ts";
import { keyTxnSetStatement } from "../lib/backend/sql/key_txn.ts";
import type { KeyTxn } from "../lib/backend/logstructured/key_txn.ts";
import { openQuietStore } from "../bench/kube_txns.ts";
import { postgresEngine } from "../lib/backend/sql/postgres.ts";
import { databaseName, PG_URL, POSTGRES } from "./helpers/backends.ts";

Deno.test("[postgres] a kube batch reads each key's latest row by index, never the whole table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "pgplan" });
  const db = databaseName(dir);
  // Creates the database and its schema.
  await (await openQuietStore(postgresEngine, `${PG_URL.slice(11)}/${db}?sslmode=disable`)).close();
  const sql = postgres(`${PG_URL}/${db}`, { max: 1, onnotice: () => {}, fetch_types: false });
  try {
    const st = new Statements(postgresDialect, "kine");
    const value = new Uint8Array(256).fill(7);
    const txn = (i: number, rev: number): KeyTxn => ({
      name: `/registry/pods/ns/p${i}`,
      compare: [{ key: "", end: "", target: "mod", result: "equal", operand: rev }],
      success: { type: "put", value, lease: 0, prevKv: false },
      failureGet: false,
    });
    for (let b = 0; b < 40; b++) {
      const s = keyTxnSetStatement(
        st,
        postgresDialect.keyTxn!,
        Array.from({ length: 100 }, (_, j) => txn(b * 100 + j, 0)),
      );
      await sql.unsafe(s.sql, s.params as never[]);
    }
    await sql.unsafe("ANALYZE kine");
    const s = keyTxnSetStatement(
      st,
      postgresDialect.keyTxn!,
      Array.from({ length: 30 }, (_, j) => txn(j, j + 1)),
    );
    const plan = (await sql.unsafe(`EXPLAIN ${s.sql}`, s.params as never[])).map((r) =>
      r["QUERY PLAN"]
    ).join("\n");
    assert.doesNotMatch(plan, /Seq Scan on kine/, plan);
  } finally {
    await sql.end();
    await POSTGRES.cleanup!(dir);
  }
});
