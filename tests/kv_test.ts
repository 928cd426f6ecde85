/**
 * etcd KV semantics through our own gRPC client: the kube-apiserver Txn shapes,
 * Range paging/count rules, errors and the edge cases of spec §13 (1–21, 39, 47, 48).
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";

const OUT_OF_RANGE = 11;
const FAILED_PRECONDITION = 9;
const MULTI_KEY = "multi-key transactions are not supported on the NATS backend";
const INVALID_ARGUMENT = 3;
const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const FUTURE = "etcdserver: mvcc: required revision is a future revision";

const put = (key: string, value: string, lease = 0) => ({
  request_put: { key: b(key), value: b(value), lease },
});
const get = (key: string) => ({ request_range: { key: b(key) } });
const del = (key: string) => ({ request_delete_range: { key: b(key) } });
const mod = (key: string, rev: number, result = "EQUAL") => ({
  key: b(key),
  target: "MOD",
  result,
  mod_revision: rev,
});

async function rejects(p: Promise<unknown>, code: number, message: string) {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code);
    assert.equal(err.details, message);
    return true;
  });
}

conformance(
  "fresh store: compact_rev_key at 1, /registry/health at 2, current revision 2",
  async ({ client }) => {
    const r = await client.kv.range({ key: b("/registry/health") });
    assert.equal(r.header.revision, 2);
    assert.equal(r.kvs[0].mod_revision, 2);
    assert.equal(s(r.kvs[0].value), '{"health":"true"}');
    const all = await client.kv.range({ key: b("\0"), range_end: b("\0") });
    assert.deepEqual(all.kvs.map((kv: any) => s(kv.key)), ["/registry/health"]);
  },
);

conformance(
  "create txn: success adds one revision; on a live key fails with no responses",
  async ({ client }) => {
    const create = { compare: [mod("/a", 0)], success: [put("/a", "1")], failure: [] };
    const ok = await client.kv.txn(create);
    assert.equal(ok.succeeded, true);
    assert.equal(ok.header.revision, 3);
    assert.equal(ok.responses.length, 1);
    assert.equal(ok.responses[0].response_put.header.revision, 3);
    const again = await client.kv.txn(create);
    assert.equal(again.succeeded, false);
    assert.equal(again.header.revision, 3);
    assert.deepEqual(again.responses, []);
    assert.equal((await client.kv.range({ key: b("/a") })).header.revision, 3);
  },
);

conformance(
  "create after delete is a new create: create_revision == mod_revision",
  async ({ client }) => {
    await client.kv.put({ key: b("/a"), value: b("1") });
    await client.kv.deleteRange({ key: b("/a") });
    const t = await client.kv.txn({
      compare: [mod("/a", 0)],
      success: [put("/a", "2")],
      failure: [],
    });
    assert.equal(t.succeeded, true);
    const kv = (await client.kv.range({ key: b("/a") })).kvs[0];
    assert.equal(kv.create_revision, t.header.revision);
    assert.equal(kv.mod_revision, t.header.revision);
    assert.equal(kv.version, 1);
  },
);

conformance("concurrent creates of one key: exactly one succeeds", async ({ client }) => {
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      (_, i) =>
        client.kv.txn({ compare: [mod("/c", 0)], success: [put("/c", `${i}`)], failure: [] }),
    ),
  );
  assert.equal(results.filter((r) => r.succeeded).length, 1);
});

conformance(
  "concurrent updates from one mod revision: one wins, losers see the winner",
  async ({ client }) => {
    const base = (await client.kv.put({ key: b("/u"), value: b("0") })).header.revision;
    const results = await Promise.all(
      Array.from(
        { length: 10 },
        (_, i) =>
          client.kv.txn({
            compare: [mod("/u", base)],
            success: [put("/u", `${i}`)],
            failure: [get("/u")],
          }),
      ),
    );
    const winners = results.filter((r) => r.succeeded);
    assert.equal(winners.length, 1);
    for (const lost of results.filter((r) => !r.succeeded)) {
      const kv = lost.responses[0].response_range.kvs[0];
      assert.equal(kv.mod_revision, winners[0].header.revision);
    }
  },
);

conformance(
  "update txn with MOD==0: creates a missing key, fails with current kv on a live one",
  async ({ client }) => {
    const upd = (v: string) => ({
      compare: [mod("/k", 0)],
      success: [put("/k", v)],
      failure: [get("/k")],
    });
    const first = await client.kv.txn(upd("1"));
    assert.equal(first.succeeded, true);
    assert.equal(first.responses[0].response_put.header.revision, first.header.revision);
    const second = await client.kv.txn(upd("2"));
    assert.equal(second.succeeded, false);
    const range = second.responses[0].response_range;
    assert.equal(range.count, 1);
    assert.equal(s(range.kvs[0].value), "1");
  },
);

conformance(
  "stale update/delete fails with the current kv; on a tombstone with empty kvs",
  async ({ client }) => {
    const r1 = (await client.kv.put({ key: b("/s"), value: b("1") })).header.revision;
    const r2 = (await client.kv.put({ key: b("/s"), value: b("2") })).header.revision;
    const stale = await client.kv.txn({
      compare: [mod("/s", r1)],
      success: [put("/s", "x")],
      failure: [get("/s")],
    });
    assert.equal(stale.succeeded, false);
    assert.equal(stale.responses[0].response_range.kvs[0].mod_revision, r2);
    const staleDel = await client.kv.txn({
      compare: [mod("/s", r1)],
      success: [del("/s")],
      failure: [get("/s")],
    });
    assert.equal(staleDel.succeeded, false);
    assert.equal(staleDel.responses[0].response_range.count, 1);
    const okDel = await client.kv.txn({
      compare: [mod("/s", r2)],
      success: [del("/s")],
      failure: [get("/s")],
    });
    assert.equal(okDel.succeeded, true);
    assert.equal(okDel.responses[0].response_delete_range.deleted, 1);
    const onTomb = await client.kv.txn({
      compare: [mod("/s", r2)],
      success: [put("/s", "y")],
      failure: [get("/s")],
    });
    assert.equal(onTomb.succeeded, false);
    assert.deepEqual(onTomb.responses[0].response_range.kvs, []);
    assert.equal(onTomb.responses[0].response_range.count, 0);
  },
);

conformance(
  "delete txn on a never-existing key takes the failure branch unless R = 0",
  async ({ client }) => {
    const before = (await client.kv.range({ key: b("/x") })).header.revision;
    const t = await client.kv.txn({
      compare: [mod("/never", 5)],
      success: [del("/never")],
      failure: [get("/never")],
    });
    assert.equal(t.succeeded, false);
    assert.deepEqual(t.responses[0].response_range.kvs, []);
    const zero = await client.kv.txn({
      compare: [mod("/never", 0)],
      success: [del("/never")],
      failure: [get("/never")],
    });
    assert.equal(zero.succeeded, true);
    assert.equal(zero.responses[0].response_delete_range.deleted, 0);
    assert.equal(zero.header.revision, before, "deleting nothing adds no revision");
  },
);

conformance(
  "MOD==0 -> delete on a live key fails (etcd), MOD==R -> put without else works",
  async ({ client }) => {
    const r = (await client.kv.put({ key: b("/l"), value: b("1") })).header.revision;
    const t = await client.kv.txn({ compare: [mod("/l", 0)], success: [del("/l")], failure: [] });
    assert.equal(t.succeeded, false);
    assert.equal((await client.kv.range({ key: b("/l") })).count, 1);
    const u = await client.kv.txn({
      compare: [mod("/l", r)],
      success: [put("/l", "2")],
      failure: [],
    });
    assert.equal(u.succeeded, true);
    assert.equal(s((await client.kv.range({ key: b("/l") })).kvs[0].value), "2");
  },
);

conformance(
  "unconditional delete shape [Range, DeleteRange] answers both ops",
  async ({ client }) => {
    await client.kv.put({ key: b("/d"), value: b("v") });
    const t = await client.kv.txn({ compare: [], success: [get("/d"), del("/d")], failure: [] });
    assert.equal(t.succeeded, true);
    assert.equal(s(t.responses[0].response_range.kvs[0].value), "v");
    assert.equal(t.responses[1].response_delete_range.deleted, 1);
    assert.equal((await client.kv.range({ key: b("/d") })).count, 0);
  },
);

conformance(
  "general txns: value/version/create/lease compares, NOT_EQUAL, ranged, nested",
  async ({ client }, backend) => {
    await client.kv.put({ key: b("/g/a"), value: b("x"), lease: 0 });
    await client.kv.put({ key: b("/g/b"), value: b("y") });
    const cmp = (c: object) =>
      client.kv.txn({ compare: [c], success: [], failure: [] }).then((r) => r.succeeded);
    assert.equal(
      await cmp({ key: b("/g/a"), target: "VALUE", result: "EQUAL", value: b("x") }),
      true,
    );
    assert.equal(
      await cmp({ key: b("/g/a"), target: "VALUE", result: "GREATER", value: b("w") }),
      true,
    );
    assert.equal(
      await cmp({ key: b("/g/a"), target: "VALUE", result: "NOT_EQUAL", value: b("x") }),
      false,
    );
    assert.equal(
      await cmp({ key: b("/g/a"), target: "VERSION", result: "EQUAL", version: 1 }),
      true,
    );
    assert.equal(
      await cmp({ key: b("/g/zz"), target: "VERSION", result: "EQUAL", version: 0 }),
      true,
    );
    assert.equal(
      await cmp({ key: b("/g/zz"), target: "CREATE", result: "EQUAL", create_revision: 0 }),
      true,
    );
    assert.equal(
      await cmp({ key: b("/g/zz"), target: "VALUE", result: "EQUAL", value: b("") }),
      false,
    );
    assert.equal(await cmp({ key: b("/g/a"), target: "LEASE", result: "EQUAL", lease: 0 }), true);
    assert.equal(
      await cmp({ key: b("/g/a"), target: "MOD", result: "LESS", mod_revision: 100 }),
      true,
    );
    assert.equal(
      await cmp({
        key: b("/g/"),
        range_end: b("/g0"),
        target: "VERSION",
        result: "GREATER",
        version: 0,
      }),
      true,
    );
    assert.equal(
      await cmp({
        key: b("/g/"),
        range_end: b("/g0"),
        target: "VALUE",
        result: "EQUAL",
        value: b("x"),
      }),
      false,
    );
    const nested = client.kv.txn({
      compare: [],
      success: [{
        request_txn: {
          compare: [{ key: b("/g/b"), target: "VALUE", result: "EQUAL", value: b("y") }],
          success: [put("/g/c", "z")],
          failure: [],
        },
      }],
      failure: [],
    });
    if (backend.multiKeyTxn === false) {
      // Compares /g/b, writes /g/c: refused whole, nothing written.
      await rejects(nested, FAILED_PRECONDITION, MULTI_KEY);
      assert.equal((await client.kv.range({ key: b("/g/c") })).kvs.length, 0);
      return;
    }
    assert.equal((await nested).responses[0].response_txn.succeeded, true);
    assert.equal(s((await client.kv.range({ key: b("/g/c") })).kvs[0].value), "z");
  },
);

conformance(
  "ignore_value with a value and ignore_lease with a lease are refused as etcd does",
  async ({ client }) => {
    await client.kv.put({ key: b("/iv"), value: b("1") });
    const before = (await client.kv.range({ key: b("/iv") })).header.revision;
    const VALUE = "etcdserver: value is provided";
    const LEASE = "etcdserver: lease is provided";
    await rejects(
      client.kv.put({ key: b("/iv"), value: b("2"), ignore_value: true }),
      INVALID_ARGUMENT,
      VALUE,
    );
    await rejects(
      client.kv.put({ key: b("/iv"), value: b("2"), lease: 7, ignore_lease: true }),
      INVALID_ARGUMENT,
      LEASE,
    );
    // both set: the value is checked first; an empty key before either
    await rejects(
      client.kv.put({
        key: b("/iv"),
        value: b("2"),
        ignore_value: true,
        lease: 7,
        ignore_lease: true,
      }),
      INVALID_ARGUMENT,
      VALUE,
    );
    await rejects(
      client.kv.put({ value: b("2"), ignore_value: true }),
      INVALID_ARGUMENT,
      "etcdserver: key is not provided",
    );
    // inside a txn, before anything is written
    await rejects(
      client.kv.txn({
        compare: [],
        success: [put("/iw", "a"), {
          request_put: { key: b("/iv"), lease: 7, ignore_lease: true },
        }],
        failure: [],
      }),
      INVALID_ARGUMENT,
      LEASE,
    );
    // without a value / lease they work
    await client.kv.put({ key: b("/iv"), ignore_value: true, ignore_lease: true });
    const after = await client.kv.range({ key: b("/iv"), range_end: b("/ix") });
    assert.equal(after.header.revision, before + 1);
    assert.deepEqual(after.kvs.map((kv: any) => [s(kv.key), s(kv.value)]), [["/iv", "1"]]);
  },
);

conformance("a txn that fails half-way leaves no row behind", async ({ client }) => {
  const before = (await client.kv.range({ key: b("/h") })).header.revision;
  await rejects(
    client.kv.txn({ compare: [], success: [put("/h1", "a"), put("/h1", "b")], failure: [] }),
    INVALID_ARGUMENT,
    "etcdserver: duplicate key given in txn request",
  );
  await assert.rejects(client.kv.txn({
    compare: [],
    success: [put("/h2", "a"), { request_put: { key: b("/h3"), ignore_value: true } }],
    failure: [],
  }));
  // An op with no request set is refused as etcd refuses it, before anything is written.
  await rejects(
    client.kv.txn({ compare: [], success: [put("/h4", "a"), {}], failure: [] }),
    INVALID_ARGUMENT,
    "etcdserver: key not found",
  );
  const after = await client.kv.range({ key: b("/h"), range_end: b("/i") });
  assert.equal(after.count, 0);
  assert.equal(after.header.revision, before);
});

conformance(
  "kube compaction txn on compact_rev_key: versions, payload, one revision each",
  async ({ client }) => {
    const txn = (version: number, payload: string) =>
      client.kv.txn({
        compare: [{ key: b("compact_rev_key"), target: "VERSION", result: "EQUAL", version }],
        success: [put("compact_rev_key", payload)],
        failure: [get("compact_rev_key")],
      });
    const r0 = (await client.kv.range({ key: b("/x") })).header.revision;
    const first = await txn(0, "0");
    assert.equal(first.succeeded, true);
    assert.equal(first.header.revision, r0 + 1);
    assert.deepEqual(first.responses, []);
    const second = await txn(1, "5");
    assert.equal(second.succeeded, true);
    assert.equal(second.header.revision, r0 + 2);
    const stale = await txn(1, "9");
    assert.equal(stale.succeeded, false);
    assert.equal(stale.header.revision, r0 + 2);
    const kv = stale.responses[0].response_range.kvs[0];
    assert.equal(stale.responses[0].response_range.header.revision, 0);
    assert.equal(s(kv.key), "compact_rev_key");
    assert.equal(kv.version, 2);
    assert.equal(s(kv.value), "5");
    assert.equal(kv.mod_revision, 0);
    const got = await client.kv.range({ key: b("compact_rev_key") });
    assert.equal(s(got.kvs[0].key), "compact_rev_key");
    assert.equal(s(got.kvs[0].value), "5");
    assert.equal(got.kvs[0].version, 2);
    const plain = await client.kv.put({ key: b("compact_rev_key"), value: b("7") });
    assert.equal(plain.header.revision, r0 + 3);
  },
);

conformance(
  "range errors: unknown options implemented, exact Get never returns children",
  async ({ client }) => {
    for (const k of ["/pods/ns/foo", "/pods/ns/foobar", "/pods/ns/foo/x"]) {
      await client.kv.put({ key: b(k), value: b(k) });
    }
    assert.equal((await client.kv.range({ key: b("/pods/") })).count, 0);
    assert.equal((await client.kv.range({ key: b("/pods/ns/") })).kvs.length, 0);
    const foo = await client.kv.range({ key: b("/pods/ns/foo") });
    assert.deepEqual(foo.kvs.map((kv: any) => s(kv.key)), ["/pods/ns/foo"]);
    const limited = await client.kv.range({ key: b("/pods/ns/foo"), limit: 2 });
    assert.equal(limited.count, 1);
    const desc = await client.kv.range({
      key: b("/pods/"),
      range_end: b("/pods0"),
      sort_order: "DESCEND",
      sort_target: "KEY",
      serializable: true,
    });
    assert.deepEqual(desc.kvs.map((kv: any) => s(kv.key)), [
      "/pods/ns/foobar",
      "/pods/ns/foo/x",
      "/pods/ns/foo",
    ]);
    await rejects(
      client.kv.range({ key: b("") }),
      INVALID_ARGUMENT,
      "etcdserver: key is not provided",
    );
  },
);

conformance(
  "list paging: count is what remains from the start key at one revision",
  async ({ client }) => {
    for (let i = 0; i < 5; i++) await client.kv.put({ key: b(`/p/${i}`), value: b(`${i}`) });
    const page1 = await client.kv.range({ key: b("/p/"), range_end: b("/p0"), limit: 2 });
    assert.deepEqual(page1.kvs.map((kv: any) => s(kv.key)), ["/p/0", "/p/1"]);
    assert.equal(page1.more, true);
    assert.equal(page1.count, 5);
    const rev = page1.header.revision;
    await client.kv.put({ key: b("/p/15"), value: b("new") }); // between pages, after the pin
    const page2 = await client.kv.range({
      key: b("/p/1\0"),
      range_end: b("/p0"),
      limit: 2,
      revision: rev,
    });
    assert.deepEqual(page2.kvs.map((kv: any) => s(kv.key)), ["/p/2", "/p/3"]);
    assert.equal(page2.count, 3);
    assert.equal(page2.more, true);
    const inclusive = await client.kv.range({
      key: b("/p/1"),
      range_end: b("/p0"),
      limit: 2,
      revision: rev,
    });
    assert.deepEqual(inclusive.kvs.map((kv: any) => s(kv.key)), ["/p/1", "/p/2"]);
    const last = await client.kv.range({
      key: b("/p/3\0"),
      range_end: b("/p0"),
      limit: 2,
      revision: rev,
    });
    assert.deepEqual(last.kvs.map((kv: any) => s(kv.key)), ["/p/4"]);
    assert.equal(last.more, false);
    assert.equal(last.count, 1);
  },
);

conformance(
  "revisions: compact rev readable, below compacted, above future, 0 latest",
  async ({ client }) => {
    const r1 = (await client.kv.put({ key: b("/r"), value: b("1") })).header.revision;
    const r2 = (await client.kv.put({ key: b("/r"), value: b("2") })).header.revision;
    await client.kv.put({ key: b("/r"), value: b("3") });
    await client.kv.compact({ revision: r2 });
    assert.equal(s((await client.kv.range({ key: b("/r"), revision: r2 })).kvs[0].value), "2");
    await rejects(client.kv.range({ key: b("/r"), revision: r1 }), OUT_OF_RANGE, COMPACTED);
    await rejects(
      client.kv.range({ key: b("/r"), range_end: b("/s"), revision: r1 }),
      OUT_OF_RANGE,
      COMPACTED,
    );
    await rejects(client.kv.range({ key: b("/r"), revision: r2 + 100 }), OUT_OF_RANGE, FUTURE);
    assert.equal(s((await client.kv.range({ key: b("/r"), revision: 0 })).kvs[0].value), "3");
  },
  { compactMinRetain: 0 },
);

conformance("count-only and keys-only ranges; counts exclude deleted keys", async ({ client }) => {
  const lease = (await client.lease.leaseGrant({ TTL: 600 })).ID;
  for (const k of ["/n/a", "/n/b", "/n/c"]) {
    await client.kv.put({ key: b(k), value: b("v"), lease });
  }
  const rev = (await client.kv.deleteRange({ key: b("/n/b") })).header.revision;
  const c = await client.kv.range({ key: b("/n/"), range_end: b("/n0"), count_only: true });
  assert.equal(c.count, 2);
  assert.deepEqual(c.kvs, []);
  const old = await client.kv.range({
    key: b("/n/"),
    range_end: b("/n0"),
    count_only: true,
    revision: rev - 1,
  });
  assert.equal(old.count, 3);
  const keys = await client.kv.range({ key: b("/n/"), range_end: b("/n0"), keys_only: true });
  assert.deepEqual(keys.kvs.map((kv: any) => [s(kv.key), kv.value.length, kv.lease]), [
    ["/n/a", 0, lease],
    ["/n/c", 0, lease],
  ]);
  assert.ok(keys.kvs[0].mod_revision > 2);
});

conformance("reads never advance the revision", async ({ client }) => {
  const rev = (await client.kv.put({ key: b("/q"), value: b("1") })).header.revision;
  for (let i = 0; i < 5; i++) await client.kv.range({ key: b("/q") });
  const list = await client.kv.range({ key: b("/"), range_end: b("0") });
  assert.equal(list.header.revision, rev);
});

conformance(
  "plain Put overwrites a key that is not the newest and returns prev_kv",
  async ({ client }) => {
    await client.kv.put({ key: b("/o"), value: b("1") });
    await client.kv.put({ key: b("/other"), value: b("x") });
    const r = await client.kv.put({ key: b("/o"), value: b("2"), prev_kv: true });
    assert.equal(s(r.prev_kv.value), "1");
    assert.equal(r.prev_kv.version, 1);
    const kv = (await client.kv.range({ key: b("/o") })).kvs[0];
    assert.equal(s(kv.value), "2");
    assert.equal(kv.version, 2);
  },
);

conformance(
  "version counts writes since creation, exactly across compaction; delete starts it over",
  async ({ client }) => {
    let rev = 0;
    for (let i = 1; i <= 4; i++) {
      rev = Number((await client.kv.put({ key: b("/ver"), value: b(`${i}`) })).header.revision);
    }
    await client.kv.compact({ revision: rev });
    const r = await client.kv.put({ key: b("/ver"), value: b("5"), prev_kv: true });
    assert.equal(r.prev_kv.version, 4);
    assert.equal((await client.kv.range({ key: b("/ver") })).kvs[0].version, 5);
    const d = await client.kv.deleteRange({ key: b("/ver"), prev_kv: true });
    assert.equal(d.prev_kvs[0].version, 5);
    await client.kv.put({ key: b("/ver"), value: b("again") });
    assert.equal((await client.kv.range({ key: b("/ver") })).kvs[0].version, 1);
  },
  { compactMinRetain: 0 },
);

conformance(
  "unlimited lists longer than a read page: whole, once each, at their revision",
  async ({ client }, backend) => {
    const single = backend.multiKeyTxn === false;
    const many = async (keys: string[]) => {
      for (let i = 0; i < keys.length; i += 100) {
        const chunk = keys.slice(i, i + 100);
        if (single) {
          await Promise.all(chunk.map((k) => client.kv.txn({ success: [put(k, `v${k}`)] })));
        } else await client.kv.txn({ success: chunk.map((k) => put(k, `v${k}`)) });
      }
    };
    // The apiserver's compaction row is stored as compact_rev_key_apiserver: the
    // 1,000th key of this range, the last of the first page, presented as compact_rev_key.
    await client.kv.put({ key: b("compact_rev_key"), value: b("1") });
    const a = Array.from(
      { length: 999 },
      (_, i) => `compact_rev_key_a${String(i).padStart(4, "0")}`,
    );
    const z = Array.from(
      { length: 1501 },
      (_, i) => `compact_rev_key_z${String(i).padStart(4, "0")}`,
    );
    await many([...a, ...z]);
    const range = { key: b("compact_rev_key_"), range_end: b("compact_rev_key`") };
    const at = await client.kv.range(range);
    const rev = Number(at.header.revision);
    const want = [...a, "compact_rev_key", ...z];
    assert.deepEqual(at.kvs.map((kv: any) => s(kv.key)), want);
    assert.equal(Number(at.count), 2501);
    assert.equal(at.more, false);
    assert.equal(s(at.kvs[999].value), "1");
    assert.equal(Number(at.kvs[999].version), 1);
    // A client paging from where the list's second read page ended still gets its own count.
    const resumed = await client.kv.range({
      ...range,
      key: b(`${z[999]}\0`),
      limit: 500,
      revision: rev,
    });
    assert.deepEqual([resumed.kvs.length, resumed.more, Number(resumed.count)], [500, true, 501]);

    if (single) { for (const k of z.slice(0, 600)) await client.kv.deleteRange({ key: b(k) }); }
    else await client.kv.deleteRange({ key: b(z[0]), range_end: b(z[600]) });
    await client.kv.put({ key: b(z[1500]), value: b("new") });
    const then = await client.kv.range({ ...range, revision: rev });
    assert.equal(Number(then.header.revision), rev + 601, "600 deletes and a put later");
    assert.deepEqual(then.kvs.map((kv: any) => s(kv.key)), want);
    assert.equal(s(then.kvs[2500].value), `v${z[1500]}`);
    const now = await client.kv.range({ ...range, keys_only: true });
    assert.equal(Number(now.count), 1901);
    assert.deepEqual(now.kvs.map((kv: any) => s(kv.key)), [
      ...a,
      "compact_rev_key",
      ...z.slice(600),
    ]);
    assert.deepEqual(
      now.kvs.filter((kv: any) => kv.value.length > 0).map((kv: any) => [s(kv.key), s(kv.value)]),
      [],
    );
    assert.equal(Number(now.kvs[999].version), 1, "keys-only still reads the compaction version");
  },
);

conformance(
  "DeleteRange: single key, range and prefix with deleted count and prev_kvs",
  async ({ client }) => {
    for (const k of ["/x/1", "/x/2", "/x/3", "/y/1"]) {
      await client.kv.put({ key: b(k), value: b(k) });
    }
    const one = await client.kv.deleteRange({ key: b("/x/1"), prev_kv: true });
    assert.equal(one.deleted, 1);
    assert.equal(s(one.prev_kvs[0].value), "/x/1");
    const none = await client.kv.deleteRange({ key: b("/x/1") });
    assert.equal(none.deleted, 0);
    // NATS too: key by key in key order, one revision each, as every deleted row on SQL
    const before = (await client.kv.range({ key: b("/x/") })).header.revision;
    const range = await client.kv.deleteRange({ key: b("/x/"), range_end: b("/x0") });
    assert.equal(range.deleted, 2);
    assert.deepEqual(range.prev_kvs, []);
    assert.equal(range.header.revision, before + 2);
    assert.equal((await client.kv.range({ key: b("/x/"), range_end: b("/x0") })).count, 0);
    const again = await client.kv.deleteRange({ key: b("/x/"), range_end: b("/x0") });
    assert.deepEqual([again.deleted, again.header.revision], [0, before + 2]);
    const all = await client.kv.deleteRange({ key: b("\0"), range_end: b("\0"), prev_kv: true });
    assert.deepEqual(all.prev_kvs.map((kv: any) => s(kv.key)), ["/registry/health", "/y/1"]);
    assert.equal(all.deleted, 2);
  },
);

conformance("Status, MemberList, health and LeaseGrant", async ({ client, endpoint }) => {
  const st = await client.maintenance.status({});
  assert.equal(st.version, "3.6.11");
  assert.ok(st.dbSize > 0);
  const ml = await client.cluster.memberList({});
  assert.equal(ml.members.length, 1);
  assert.equal(ml.members[0].name, "kine");
  assert.deepEqual(ml.members[0].clientURLs, [`http://${endpoint}`]);
  assert.equal((await client.health.check({})).status, "SERVING");
  const lease = await client.lease.leaseGrant({ TTL: 30 });
  assert.ok(lease.ID >= 2 ** 32, "etcd-style lease IDs, not the TTL");
  assert.equal(lease.TTL, 30);
}, { emulatedEtcdVersion: "3.6.11" });
