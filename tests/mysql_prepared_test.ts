/**
 * MariaDB runs a kube txn's statements prepared once per connection
 * (`EXECUTE … USING`), counted by the server; a server that refuses further
 * prepared statements (`max_prepared_stmt_count`) gets the same answers as
 * text, with no write lost or failed.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { b } from "./helpers/client.ts";
import { privateMariadb } from "./helpers/private_db.ts";
import { mysqlEngine } from "../lib/backend/sql/mysql.ts";
import { WritePipeline } from "../lib/backend/logstructured/write_pipeline.ts";
import type { Op, Txn, TxnResult } from "../lib/backend/types.ts";
import { deleteOp, kubeTxn, openQuietStore, putOp, silent } from "../bench/kube_txns.ts";

const put = (key: string, value: string): Op => putOp(key, b(value));

Deno.test("[mysql] kube txns run prepared; past the server's cap they run as text", async () => {
  const db = await privateMariadb();
  const port = Number(/:(\d+)\)/.exec(db.endpoint)![1]);
  const admin = await mysql.createConnection({ host: "127.0.0.1", port, user: "root" });
  const store = await openQuietStore(mysqlEngine, `root@tcp(127.0.0.1:${port})/kine`);
  try {
    const pipeline = new WritePipeline(store, { logger: silent }, () => {});
    const executed = async () => {
      const [rows] = await admin.query("SHOW GLOBAL STATUS LIKE 'Com_execute_sql'");
      return Number((rows as { Value: string }[])[0].Value);
    };
    const all = (txns: Txn[]): Promise<TxnResult[]> =>
      Promise.all(txns.map((t) => pipeline.txn(t)));

    // A bulk load first: its many statement texts take none of the connection's prepared slots.
    const load = Array.from({ length: 100 }, (_, i) => put(`/bulk/${i}`, "v"));
    await all([{ compare: [], success: load, failure: [] }]);
    const before = await executed();
    const created = await all(
      Array.from({ length: 10 }, (_, i) => kubeTxn(`/a/${i}`, 0, put(`/a/${i}`, "1"))),
    );
    assert.ok(created.every((r) => r.succeeded));
    assert.ok(await executed() - before >= 20, "two EXECUTEs per kube txn");

    // No more prepared statements: a txn of a new shape (a version compare) needs one.
    await admin.query("SET GLOBAL max_prepared_stmt_count = 0");
    const versioned: Txn = {
      compare: [{ key: "/a/0", end: "", target: "version", result: "equal", operand: 1 }],
      success: [put("/a/0", "2")],
      failure: [],
    };
    const [bumped] = await all([versioned]);
    assert.equal(bumped.succeeded, true);
    const atText = await executed();
    const updated = await all(
      created.map((r, i) =>
        kubeTxn(`/a/${i}`, i === 0 ? bumped.revision : r.revision, deleteOp(`/a/${i}`))
      ),
    );
    assert.deepEqual(updated.map((r) => r.succeeded), Array(10).fill(true));
    assert.equal(await executed(), atText, "as text from then on");
    const stale = await all([kubeTxn("/a/1", created[1].revision, put("/a/1", "3"))]);
    assert.equal(stale[0].succeeded, false, "a stale compare still fails");
  } finally {
    await store.close();
    await admin.end();
    await db.destroy();
  }
});
