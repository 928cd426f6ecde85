/**
 * SQLite's set-based bulk load (`lib/backend/sql/bulk_put.ts`) writes
 * exactly the rows the general path writes a put at a time: the same txns
 * run on two files, one of them with the bulk path hidden, and the two
 * tables are compared row by row.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import type { SqlStore } from "../lib/backend/sql/store.ts";
import { sqliteEngine } from "../lib/backend/sql/sqlite.ts";
import { WritePipeline } from "../lib/backend/logstructured/write_pipeline.ts";
import type { LogStore } from "../lib/backend/logstructured/log.ts";
import type { TxnResult } from "../lib/backend/types.ts";
import { openQuietStore, silent } from "../bench/kube_txns.ts";
import { BATCHES } from "./helpers/bulk_loads.ts";

/** `store` without its bulk path: every txn runs a put at a time. */
function withoutBulk(store: SqlStore): LogStore {
  return new Proxy(store, {
    get(target, p) {
      if (p === "writeBulk") return undefined;
      const v = Reflect.get(target, p);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function run(store: LogStore): Promise<TxnResult[][]> {
  const pipeline = new WritePipeline(store, { logger: silent }, () => {});
  const out: TxnResult[][] = [];
  for (const batch of BATCHES) out.push(await Promise.all(batch.map((t) => pipeline.txn(t))));
  return out;
}

function table(path: string): unknown[][] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const st = db.prepare("SELECT * FROM kine ORDER BY id");
    st.setReturnArrays(true);
    return st.all() as unknown as unknown[][];
  } finally {
    db.close();
  }
}

Deno.test("[sqlite] a bulk load writes the rows of puts one at a time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "bulk-put" });
  const engine = sqliteEngine(false);
  try {
    const results: TxnResult[][][] = [];
    for (const [name, hide] of [["bulk", false], ["general", true]] as const) {
      const store = await openQuietStore(engine, `${dir}/${name}.db`);
      try {
        results.push(await run(hide ? withoutBulk(store) : store));
      } finally {
        await store.close();
      }
    }
    assert.deepEqual(results[0], results[1], "the same answers");
    const rows = table(`${dir}/bulk.db`);
    assert.deepEqual(rows, table(`${dir}/general.db`), "the same rows");
    const top = results[0].at(-1)![0].revision;
    assert.equal(rows.length, top, "one row per revision, no gap");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
