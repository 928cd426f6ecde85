/**
 * Keys at the edges of the UTF-8 rule: NUL bytes are refused at write time on
 * every backend, range bounds that are not text are rounded up with a carry
 * (a prefix read of a key ending in 0xFF), and a watch whose range end is at
 * or below its key is refused as etcd refuses it.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { WatchClient } from "./helpers/watch.ts";

const INVALID_ARGUMENT = 3;
const NUL = "etcdserver: key contains a NUL byte";

async function refused(p: Promise<unknown>, message: string) {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, INVALID_ARGUMENT, err.details);
    assert.equal(err.details, message);
    return true;
  });
}

const bytes = (...parts: (string | number[])[]) =>
  new Uint8Array(parts.flatMap((p) => typeof p === "string" ? [...b(p)] : p));

/** etcd's prefix end (clientv3.GetPrefixRangeEnd): drop trailing 0xFF, add one to the last byte. */
function prefixEnd(key: Uint8Array): Uint8Array {
  const end = [...key];
  while (end.length > 0 && end[end.length - 1] === 0xff) end.pop();
  if (end.length === 0) return new Uint8Array([0]);
  end[end.length - 1]++;
  return new Uint8Array(end);
}

conformance(
  "a key with a NUL byte is refused at write time, whatever the op",
  async ({ client }) => {
    await client.kv.put({ key: b("a"), value: b("plain") });
    for (const key of [bytes("a", [0]), bytes("a", [0], "b"), bytes("/k/", [0])]) {
      await refused(client.kv.put({ key, value: b("v") }), NUL);
      await refused(
        client.kv.txn({ success: [{ request_put: { key, value: b("v") } }] }),
        NUL,
      );
      await refused(
        client.kv.txn({
          success: [{ request_txn: { success: [{ request_put: { key, value: b("v") } }] } }],
        }),
        NUL,
      );
      await refused(client.kv.range({ key }), NUL);
      await refused(client.kv.deleteRange({ key }), NUL);
    }
    // Nothing was written: "a" is the only key, read back byte-exact.
    const all = await client.kv.range({ key: b("a"), range_end: b("b") });
    assert.deepEqual(all.kvs.map((kv: any) => [...kv.key]), [[0x61]]);
    // A range bound may hold NUL: kube's continue token is the last key + NUL.
    const next = await client.kv.range({ key: bytes("a", [0]), range_end: b("b") });
    assert.equal(next.count, 0);
    const from = await client.kv.range({ key: bytes([0]), range_end: bytes([0]) });
    assert.ok(from.kvs.some((kv: any) => s(kv.key) === "a"));
  },
);

const list = async (client: any, key: Uint8Array) =>
  (await client.kv.range({ key, range_end: prefixEnd(key) })).kvs.map((kv: any) => s(kv.key));

conformance(
  "prefix reads of keys ending in 0xFF carry into the previous code point",
  async ({ client }, backend) => {
    for (const k of ["a", "az", "b"]) await client.kv.put({ key: b(k), value: b(k) });
    // "a" + FF: no key has that prefix; the start rounds up to "b", the end is "b" too.
    assert.deepEqual(await list(client, bytes("a", [0xff])), []);
    // A bare 0xFF: no text is at or above it; an empty answer, not an error.
    assert.deepEqual(await list(client, bytes([0xff])), []);
    // A delete or a compare over such a range sees no key (NATS refuses both over ranges).
    if (backend.name === "nats") return;
    const del = await client.kv.deleteRange({ key: bytes([0xff]), range_end: bytes([0]) });
    assert.equal(del.deleted, 0);
    const t = await client.kv.txn({
      compare: [{
        key: bytes("a", [0xff]),
        range_end: prefixEnd(bytes("a", [0xff])),
        target: "VERSION",
        result: "EQUAL",
        version: 0,
      }],
    });
    assert.equal(t.succeeded, true);
    assert.equal((await client.kv.range({ key: b("a"), range_end: b("c") })).count, 3);
  },
);

conformance(
  "prefix reads of non-ASCII keys at the top of a byte carry the same way",
  async ({ client }) => {
    for (const k of ["a", "a\u{10FFFF}", "a\u{10FFFF}z", "b", "ÿ", "ÿx", "\u{10FFFF}"]) {
      await client.kv.put({ key: b(k), value: b(k) });
    }
    // U+10FFFF (F4 8F BF BF): its prefix end F4 8F BF C0 is past every code point → "b".
    assert.deepEqual(await list(client, b("a\u{10FFFF}")), ["a\u{10FFFF}", "a\u{10FFFF}z"]);
    // "ÿ" (C3 BF): the end C3 C0 rounds up to U+100.
    assert.deepEqual(await list(client, b("ÿ")), ["ÿ", "ÿx"]);
    assert.deepEqual(await list(client, b("\u{10FFFF}")), ["\u{10FFFF}"]);
  },
  {},
  (backend) => backend.name !== "mysql", // MySQL keys are ASCII
);

conformance(
  "a watch whose range end is at or below its key is refused as etcd refuses it",
  async ({ endpoint, client }) => {
    const w = new WatchClient(endpoint);
    try {
      const cases: [Uint8Array, Uint8Array][] = [
        [b("/b"), b("/a")], // end below key
        [b("/a"), b("/a")], // empty range
        [new Uint8Array(0), new Uint8Array([0, 0])], // the empty key is "\0", not below "\0\0"
      ];
      const expect = [true, true, false];
      for (const [i, [key, range_end]] of cases.entries()) {
        const from = w.responses.length;
        w.call.write({ create_request: { key, range_end, start_revision: 0 } });
        const r = await w.waitFor((r) => r.created, 5000, from, `watch ${i}`);
        if (expect[i]) {
          assert.equal(r.watch_id, -1, `case ${i}`);
          assert.equal(r.canceled, true);
          assert.equal(r.cancel_reason, "mvcc: watcher range is empty");
        } else {
          assert.notEqual(r.watch_id, -1, `case ${i}: ${r.cancel_reason}`);
          assert.equal(r.canceled, false);
        }
      }
      // The stream still serves watches afterwards.
      const ok = await w.watch({ key: "/x" });
      await client.kv.put({ key: b("/x"), value: b("1") });
      await w.waitEvents(ok.watch_id, 1);
    } finally {
      await w.close();
    }
  },
);
