/**
 * A txn that writes nothing is answered from the key index, like a Range:
 * the same answers as etcd, and none of the store reads a write transaction
 * would run (counted by `kine_sql_total`).
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";

/** Store reads of keys and ranges: what the key index spares a Range. */
const STORE_READS = new Set(["get", "list", "count", "latest"]);

/** The number of {@link STORE_READS} statements run so far. */
async function storeReads(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  let n = 0;
  for (const m of text.matchAll(/^kine_sql_total\{name="(\w+)"[^}]*\} (\d+)$/gm)) {
    if (STORE_READS.has(m[1])) n += Number(m[2]);
  }
  return n;
}

conformance(
  "a read-only txn reads the key index at one revision, not the store",
  async ({ client, kine }) => {
    for (let i = 0; i < 5; i++) await client.kv.put({ key: b(`/r/${i}`), value: b(`v${i}`) });
    const head = (await client.kv.put({ key: b("/flag"), value: b("on") })).header.revision;
    const before = await storeReads(kine.metricsUrl!);
    const t = await client.kv.txn({
      compare: [
        { key: b("/flag"), target: "VALUE", result: "EQUAL", value: b("on") },
        { key: b("/r/"), range_end: b("/r0"), target: "VERSION", result: "EQUAL", version: 1 },
      ],
      success: [
        { request_range: { key: b("/r/"), range_end: b("/r0"), limit: 2 } },
        {
          request_txn: {
            compare: [{ key: b("/none"), target: "CREATE", result: "EQUAL", create_revision: 0 }],
            success: [{ request_range: { key: b("/r/3") } }],
            failure: [],
          },
        },
        { request_range: { key: b("/r/0"), revision: head - 5 } },
      ],
      failure: [],
    });
    assert.equal(await storeReads(kine.metricsUrl!), before, "the txn read the store");
    assert.equal(t.succeeded, true);
    assert.equal(t.header.revision, head);
    const [list, inner, old] = t.responses;
    assert.deepEqual(list.response_range.kvs.map((kv: any) => s(kv.key)), ["/r/0", "/r/1"]);
    assert.equal(list.response_range.more, true);
    assert.equal(Number(list.response_range.count), 5);
    assert.equal(list.response_range.header.revision, head);
    assert.equal(inner.response_txn.succeeded, true);
    assert.equal(s(inner.response_txn.responses[0].response_range.kvs[0].value), "v3");
    assert.equal(s(old.response_range.kvs[0].value), "v0");

    const failed = await client.kv.txn({
      compare: [{ key: b("/flag"), target: "VALUE", result: "EQUAL", value: b("off") }],
      success: [],
      failure: [{ request_range: { key: b("/flag") } }],
    });
    assert.equal(failed.succeeded, false);
    assert.equal(s(failed.responses[0].response_range.kvs[0].value), "on");
    assert.equal(await storeReads(kine.metricsUrl!), before, "the txn read the store");
  },
  { metricsBindAddress: "127.0.0.1:0" },
  (backend) => ["sqlite", "postgres", "mysql"].includes(backend.name),
);
