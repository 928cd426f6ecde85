/**
 * Keys are bytes: NUL, 0xFF and invalid UTF-8 keys are stored and read back
 * exactly on SQLite, memory and NATS (refused on PostgreSQL and MySQL, whose
 * key columns are text), ranges follow etcd's byte order, prefix reads of
 * keys ending in 0xFF select what etcd selects, and a watch whose range end
 * is at or below its key is refused as etcd refuses it.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { WatchClient } from "./helpers/watch.ts";
import { startTestKine } from "./helpers/kine.ts";
import { DatabaseSync } from "node:sqlite";

const INVALID_ARGUMENT = 3;
const TEXT_ONLY =
  "stores keys as text: a key must be valid UTF-8 without NUL and must not start with byte 0x00 or 0x01";

async function refused(p: Promise<unknown>, message: string) {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, INVALID_ARGUMENT, err.details);
    assert.ok(String(err.details).includes(message), err.details);
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

const hex = (k: Uint8Array) => [...k].map((x) => x.toString(16).padStart(2, "0")).join("");
/** Keys of a response, without upstream kine's `/registry/health`, which every store holds. */
const keysOf = (r: any) =>
  r.kvs.map((kv: any) => hex(kv.key)).filter((k: string) => k !== hex(b("/registry/health")));
const ALL = { key: bytes([0]), range_end: bytes([0]) };

/** Keys only bytes can spell, in etcd's (unsigned bytewise) order. */
const BYTE_KEYS = [
  bytes([0]),
  bytes([0], "k"),
  bytes([0, 0, 0xff]),
  bytes([1], "kine/auth"), // where kine kept its auth state: now a key like any other
  bytes([1], "kine/alarms"),
  bytes("a", [0], "b"),
  bytes("a", [0xc3, 0x28]), // invalid UTF-8
  bytes("a", [0xff]),
  bytes([0xc3, 0xbf]), // "ÿ" as text: valid UTF-8, so a text key on SQL
  bytes([0xff]),
  bytes([0xff, 0, 0xff]),
  bytes([0xff, 0xff]),
];
const TEXT_KEYS = [bytes("a"), bytes("b")];

conformance(
  "keys are bytes: NUL, 0xFF and invalid UTF-8 keys round-trip in byte order",
  async ({ client, endpoint }, backend) => {
    for (const key of TEXT_KEYS) await client.kv.put({ key, value: key });
    if (backend.name === "postgres" || backend.name === "mysql") {
      // Text engines refuse what their key column cannot hold, and write nothing.
      for (const key of BYTE_KEYS.filter((k) => k[0] < 2 || k.includes(0) || hex(k) === "ff")) {
        await refused(client.kv.put({ key, value: b("v") }), TEXT_ONLY);
        await refused(
          client.kv.txn({ success: [{ request_put: { key, value: b("v") } }] }),
          TEXT_ONLY,
        );
        assert.equal((await client.kv.range({ key })).count, 0);
        await refused(client.kv.deleteRange({ key }), TEXT_ONLY);
      }
      assert.deepEqual(keysOf(await client.kv.range(ALL)), TEXT_KEYS.map(hex));
      return;
    }
    const w = new WatchClient(endpoint);
    try {
      // A watch over the keys that start with NUL (prefix end of [0] is [1]).
      w.call.write({ create_request: { key: bytes([0]), range_end: bytes([1]) } });
      const created = await w.waitFor((r) => r.created);
      // Written in reverse: the order read back is the store's, not the writes'.
      for (const key of [...BYTE_KEYS].reverse()) await client.kv.put({ key, value: key });
      const want = [...BYTE_KEYS, ...TEXT_KEYS].map(hex).sort();
      const all = await client.kv.range(ALL);
      assert.deepEqual(keysOf(all), want);
      for (const kv of all.kvs) {
        if (keysOf({ kvs: [kv] }).length) assert.equal(hex(kv.value), hex(kv.key));
      }
      assert.equal(all.count, want.length + 1);
      // Single-key reads are exact: "a\0b" is not "a", [FF] is not [FF FF].
      for (const key of BYTE_KEYS) {
        assert.deepEqual(keysOf(await client.kv.range({ key })), [hex(key)]);
      }
      // Prefix ranges computed on bytes: [FF]'s end is "\0" (every key from it).
      const prefix = async (p: Uint8Array) =>
        keysOf(await client.kv.range({ key: p, range_end: prefixEnd(p) }));
      assert.deepEqual(await prefix(bytes([0xff])), ["ff", "ff00ff", "ffff"]);
      assert.deepEqual(await prefix(bytes("a")), ["61", "610062", "61c328", "61ff"]);
      assert.deepEqual(await prefix(bytes([0])), ["00", "0000ff", "006b"]);
      assert.deepEqual(await prefix(bytes([1])), [hex(BYTE_KEYS[4]), hex(BYTE_KEYS[3])]);
      // Keys only and count only see the same keys.
      assert.equal((await client.kv.range({ ...ALL, count_only: true })).count, want.length + 1);
      // The watch got the three NUL-prefixed puts, keys exact; a watch from history too.
      const events = await w.waitEvents(created.watch_id, 3);
      assert.deepEqual(events.map((e: any) => hex(e.kv.key)), ["0000ff", "006b", "00"]);
      const from = events[0].kv.mod_revision;
      w.call.write({
        create_request: { key: bytes([0]), range_end: bytes([1]), start_revision: from },
      });
      const past = await w.waitFor((r) => r.created && r.watch_id !== created.watch_id);
      const history = await w.waitEvents(past.watch_id, 3);
      assert.deepEqual(history.map((e: any) => hex(e.kv.key)), ["0000ff", "006b", "00"]);
      // A txn's own range reads the store (SQLite: text and BLOB keys merged in byte order).
      const inTxn = await client.kv.txn({
        success: [{ request_range: { key: bytes([0]), range_end: bytes("b"), limit: 4 } }],
      });
      assert.deepEqual(keysOf(inTxn.responses[0].response_range), want.slice(0, 4));
      // A txn compares a byte key's value and writes it (one key: NATS's txns are single-key).
      const t = await client.kv.txn({
        compare: [{
          key: BYTE_KEYS[6],
          target: "VALUE",
          result: "EQUAL",
          value: BYTE_KEYS[6],
        }],
        success: [{ request_put: { key: BYTE_KEYS[6], value: b("t") } }],
      });
      assert.equal(t.succeeded, true);
      assert.equal(s((await client.kv.range({ key: BYTE_KEYS[6] })).kvs[0].value), "t");
      // A ranged delete over byte bounds (NATS deletes key by key).
      const del = await client.kv.deleteRange({
        key: bytes([0xff]),
        range_end: bytes([0xff, 0xff]),
        prev_kv: true,
      });
      assert.deepEqual(del.prev_kvs.map((kv: any) => hex(kv.key)), ["ff", "ff00ff"]);
      assert.deepEqual(await prefix(bytes([0xff])), ["ffff"]);
      // A lease lists its byte keys exactly, and revoking it deletes them.
      const lease = await client.lease.leaseGrant({ TTL: 60 });
      await client.kv.put({ key: bytes([0, 0xfe]), value: b("l"), lease: lease.ID });
      const ttl = await client.lease.leaseTimeToLive({ ID: lease.ID, keys: true });
      assert.deepEqual(ttl.keys.map(hex), ["00fe"]);
      await client.lease.leaseRevoke({ ID: lease.ID });
      assert.equal((await client.kv.range({ key: bytes([0, 0xfe]) })).count, 0);
    } finally {
      await w.close();
    }
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

Deno.test("[sqlite] kine's own rows stay where they were; a client key with their bytes is a BLOB beside them", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-keys-" });
  const endpoint = `sqlite://${dir}/state.db`;
  const alarmKey = bytes([1], "kine/alarms");
  try {
    const first = await startTestKine({ endpoint });
    try {
      await first.client.kv.put({ key: alarmKey, value: b("client") });
      await first.client.maintenance.alarm({ action: "ACTIVATE", alarm: "NOSPACE", memberID: 7 });
    } finally {
      await first.close();
    }
    const db = new DatabaseSync(`${dir}/state.db`);
    try {
      const rows = db.prepare(
        "SELECT typeof(name) AS t, hex(name) AS h FROM kine WHERE hex(name) = ? ORDER BY id",
      ).all(hex(alarmKey).toUpperCase()).map((r) => r.t);
      // The alarms as text (where kine kept them before keys were bytes), the client's key as bytes.
      assert.deepEqual(rows, ["blob", "text"]);
    } finally {
      db.close();
    }
    const again = await startTestKine({ endpoint });
    try {
      const c = again.client;
      const listed = await c.maintenance.alarm({ action: "GET", alarm: "NONE", memberID: 0 });
      assert.deepEqual(listed.alarms.map((a: any) => a.alarm), ["NOSPACE"]);
      assert.equal(s((await c.kv.range({ key: alarmKey })).kvs[0].value), "client");
      // Every client range ends below kine's own keys: one key with these bytes, the client's.
      const all = await c.kv.range({ key: bytes([1]), range_end: bytes([0]) });
      assert.deepEqual(keysOf(all), [hex(alarmKey)]);
    } finally {
      await again.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
