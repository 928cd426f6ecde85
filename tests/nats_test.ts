/**
 * The NATS backend's own pieces: upstream's key encoding (spec §7.3), the
 * versioned record codec, and `nats://` endpoint parsing (spec §7.1).
 */
import assert from "node:assert/strict";
import { decodeRecord, encodeRecord, RecordError } from "../lib/backend/nats/codec.ts";
import { parseNatsEndpoint } from "../lib/backend/nats/options.ts";
import { connectionOptions } from "../lib/backend/nats/connect.ts";
import { startKine } from "../lib/mod.ts";
import { b, s } from "./helpers/client.ts";
import { startTestKine } from "./helpers/kine.ts";
import { bucketFor, deleteBucket, SHARED_NATS } from "./helpers/nats.ts";
import { WatchClient } from "./helpers/watch.ts";

const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
import { silentLogger } from "../lib/log/mod.ts";
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { base58, decodeKey, encodeKey, KeyNames, unbase58 } from "../lib/backend/nats/keys.ts";
import { keyFromText } from "../lib/backend/keys.ts";
import { AUTH_KEY } from "../lib/auth/store.ts";

Deno.test("keys: upstream's examples, and back", () => {
  const cases: [string, string][] = [
    ["a", "meta.2g"],
    ["/a/a", "2g.2g"],
    ["a/*/a", "meta.2g.j.2g"],
    ["/a/*/a/", "2g.j.2g.p"],
  ];
  for (const [key, subject] of cases) {
    assert.equal(encodeKey(key), subject);
    assert.equal(decodeKey(subject), key);
  }
  // Keys are byte strings (one code unit per byte): text, NUL, 0xFF, invalid UTF-8.
  const keys = [
    keyFromText("/registry/pods/default/ü-🙂"),
    "compact_rev_key",
    "//x",
    "/a b/\u0000c",
    "/\xff\xff/\xc3(",
    "\0",
    "\x01kine/auth",
    "\0/\x01",
    AUTH_KEY,
  ];
  for (const key of keys) {
    assert.equal(decodeKey(encodeKey(key)), key);
    assert.match(encodeKey(key), /^(_b\.)?[1-9A-HJ-NP-Za-km-z.]+$/, "subject tokens only");
  }
  // kine's own keys keep the subjects of the bytes they had (\x01kine/…); a client key with
  // those bytes gets one of its own.
  const legacy = `meta.${base58(new Uint8Array([1, ...b("kine")]))}.${base58(b("auth"))}`;
  assert.equal(encodeKey(AUTH_KEY), legacy);
  assert.equal(decodeKey(legacy), AUTH_KEY);
  assert.equal(encodeKey("\x01kine/auth"), `_b.${legacy}`);
  assert.throws(() => encodeKey(""), /not valid on NATS/);
  assert.throws(() => encodeKey("/"), /not valid on NATS/);
  assert.throws(() => decodeKey("0OIl"), /invalid base58/);
});

Deno.test("keys: base58 keeps leading zero bytes", () => {
  const bytes = new Uint8Array([0, 0, 1, 255, 0]);
  assert.equal(base58(bytes).slice(0, 2), "11");
  assert.deepEqual(unbase58(base58(bytes)), bytes);
  assert.equal(base58(new TextEncoder().encode("hello world")), "StV1DL6CwTryKyV");
});

/** Base58 the slow, plain way (a BigInt), to check the fast one against. */
function reference58(bytes: Uint8Array): string {
  const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  let n = 0n;
  for (const x of bytes) n = n * 256n + BigInt(x);
  let out = "";
  for (; n > 0n; n /= 58n) out = alphabet[Number(n % 58n)] + out;
  let zeros = 0;
  while (zeros < bytes.length && bytes[zeros] === 0) zeros++;
  return "1".repeat(zeros) + out;
}

Deno.test("keys: random byte keys round trip, past the decoder's prefix cache", () => {
  // Shared prefixes (the decoder remembers them), long segments (check perf's 256 bytes) and
  // every byte value; more keys than the cache holds, so it is cleared on the way.
  const names = new KeyNames();
  const rand = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 256));
  for (let i = 0; i < 6000; i++) {
    const segment = String.fromCharCode(...rand(1 + (i % 300)));
    const key = `${i % 2 ? "/" : ""}p${i % 7}/q${i % 5000}/` + segment;
    assert.equal(decodeKey(encodeKey(key)), key);
    // Remembered (long keys) or converted again (short ones): the same pair either way, twice.
    for (let twice = 0; twice < 2; twice++) {
      assert.equal(names.encode(key), encodeKey(key));
      assert.equal(names.decode(encodeKey(key)), key);
    }
    const bytes = new Uint8Array(rand(i % 300));
    if (i % 3 === 0) bytes.fill(0, 0, i % 4); // leading zero bytes
    assert.equal(base58(bytes), reference58(bytes));
    assert.deepEqual(unbase58(base58(bytes)), bytes);
  }
});

Deno.test("records: version 1 round trip; upstream's S2 records are told apart", () => {
  const r = {
    created: false,
    deleted: true,
    createRevision: 7,
    prevRevision: 2 ** 40,
    lease: 2 ** 52 + 1,
    version: 3,
    value: new TextEncoder().encode("v"),
  };
  const data = encodeRecord(r);
  assert.equal(data[0], 1, "codec version byte");
  assert.deepEqual(decodeRecord(data), r);
  const s2 = new Uint8Array([0xff, 0x06, 0, 0, ...new TextEncoder().encode("S2sTwO")]);
  assert.throws(
    () => decodeRecord(s2),
    (e) => e instanceof RecordError && /upstream/.test(e.message),
  );
  assert.throws(() => decodeRecord(new Uint8Array([9, 0])), /unknown record codec version 9/);
});

Deno.test("endpoint: defaults, servers, credentials and parameters", () => {
  const d = parseNatsEndpoint("nats://");
  assert.deepEqual(
    [d.servers, d.bucket, d.replicas, d.revHistory, d.slowMethodMs],
    [["127.0.0.1:4222"], "kine", 1, 10, 500],
  );
  const o = parseNatsEndpoint(
    "nats://u:p%40ss@h1,nats://h2:4333?bucket=b1&replicas=3&revHistory=64&slowMethod=2s&credsFile=/c",
  );
  assert.deepEqual(o.servers, ["h1:4222", "h2:4333"]);
  assert.deepEqual([o.user, o.pass, o.token], ["u", "p@ss", undefined]);
  assert.deepEqual([o.bucket, o.replicas, o.revHistory, o.slowMethodMs], ["b1", 3, 64, 2000]);
  assert.equal(o.credsFile, "/c");
  assert.equal(parseNatsEndpoint("jetstream://tok@h:1").token, "tok");
  assert.equal(parseNatsEndpoint("nats://h?replicas=x").replicas, 1, "unparsable: default");
  assert.deepEqual(parseNatsEndpoint("nats://h?noEmbed&dataDir=/d").ignored, [
    "noEmbed",
    "dataDir",
  ]);
  const bad: [string, RegExp][] = [
    ["nats://h?replicas=6", /: invalid replicas, must be >= 1 and <= 5$/],
    ["nats://h?revHistory=1", /: invalid revHistory, must be >= 2 and <= 64$/],
    ["nats://h?slowMethod=fast", /: invalid slowMethod duration fast$/],
    ["nats://h,http://secret:pw@h2", /: invalid connection string=h2$/],
    ["nats://h?contextFile=/ctx.json", /: when using context endpoint no host should be provided$/],
  ];
  for (const [endpoint, message] of bad) assert.throws(() => parseNatsEndpoint(endpoint), message);
  assert.doesNotMatch(
    (() => {
      try {
        parseNatsEndpoint("nats://h,http://user:hunter2@h2");
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /hunter2/,
  );
  assert.equal(parseNatsEndpoint("nats://?contextFile=/ctx.json").contextFile, "/ctx.json");
});

Deno.test("endpoint: a bad nats:// endpoint stops start-up and says why", async () => {
  await assert.rejects(
    startKine(
      { endpoint: "jetstream://h?revHistory=99", listenAddress: "127.0.0.1:0" },
      silentLogger,
    ),
    /^Error: failed to create driver for endpoint: invalid revHistory, must be >= 2 and <= 64$/,
  );
});

Deno.test("revHistory: reads and watches that need a discarded message are compacted, never wrong", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-nats-history-" });
  const bucket = bucketFor(dir);
  const k = await startTestKine({
    endpoint: `nats://${SHARED_NATS}?bucket=${bucket}&revHistory=3`,
  });
  const w = new WatchClient(k.endpoint);
  try {
    const put = async (key: string, v: string) =>
      Number((await k.client.kv.put({ key: b(key), value: b(v) })).header.revision);
    const first = await put("/h/hot", "0");
    const cold = await put("/h/cold", "c");
    let last = first;
    for (let i = 1; i <= 5; i++) last = await put("/h/hot", String(i));
    // JetStream keeps the last 3 messages of /h/hot: revisions last-2..last.
    const at = (revision: number) =>
      k.client.kv.range({ key: b("/h/"), range_end: b("/h0"), revision });
    const oldest = last - 2;
    assert.deepEqual(
      (await at(oldest)).kvs.map((kv: any) => [s(kv.key), s(kv.value)]),
      [["/h/cold", "c"], ["/h/hot", "3"]],
    );
    await assert.rejects(at(cold), (e: any) => e.code === 11 && e.details === COMPACTED);
    const late = await w.watch({ key: "/h/", rangeEnd: "/h0", startRevision: first });
    assert.ok(late.canceled || (await w.waitFor((r) => r.canceled, 3000)).canceled);
    const ok = (await w.watch({ key: "/h/", rangeEnd: "/h0", startRevision: oldest + 1 }))
      .watch_id;
    const events = await w.waitEvents(ok, 2);
    assert.deepEqual(events.map((e: any) => s(e.kv.value)), ["4", "5"]);
  } finally {
    await w.close();
    await k.close();
    await deleteBucket(bucket);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reads from the index follow deletes, KV delete markers and purges, and a restart's replay", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-nats-index-" });
  const bucket = bucketFor(dir);
  const endpoint = `nats://${SHARED_NATS}?bucket=${bucket}`;
  let k = await startTestKine({ endpoint });
  const nc = await connect({ servers: SHARED_NATS });
  const all = { key: b("/i/"), range_end: b("/i0") };
  const count = async () => Number((await k.client.kv.range({ ...all, count_only: true })).count);
  try {
    for (let i = 0; i < 20; i++) {
      await k.client.kv.put({ key: b(`/i/${String(i).padStart(2, "0")}`), value: b(`v${i}`) });
    }
    await k.client.kv.put({ key: b("/i/05"), value: b("again") });
    await k.client.kv.deleteRange({ key: b("/i/00") });
    const pinned = Number((await k.client.kv.range({ key: b("/i/01") })).header.revision);
    // Another NATS client deletes one key (a marker) and purges another (every message of it).
    const kv = await new Kvm(jetstream(nc)).open(bucket);
    await kv.delete(encodeKey("/i/01"));
    await kv.purge(encodeKey("/i/02"));
    for (let tries = 0; (await count()) !== 17; tries++) {
      assert.ok(tries < 100, "the markers never reached the index");
      await new Promise((r) => setTimeout(r, 50));
    }
    const want = Array.from({ length: 17 }, (_, i) => `/i/${String(i + 3).padStart(2, "0")}`);
    const check = async () => {
      assert.equal(await count(), 17);
      const full = await k.client.kv.range(all);
      assert.deepEqual(full.kvs.map((x: any) => s(x.key)), want);
      assert.equal(s(full.kvs.find((x: any) => s(x.key) === "/i/05").value), "again");
      const page = await k.client.kv.range({ ...all, keys_only: true, limit: 5 });
      assert.deepEqual(page.kvs.map((x: any) => [s(x.key), x.value.length]), [
        ...want.slice(0, 5).map((key) => [key, 0]),
      ]);
      assert.equal(Number(page.count), 17);
      assert.ok(page.more);
      const revision = Number(full.header.revision);
      const rest = await k.client.kv.range({
        key: b(want[4] + "\0"),
        range_end: b("/i0"),
        revision,
        limit: 100,
      });
      assert.deepEqual(rest.kvs.map((x: any) => s(x.key)), want.slice(5));
      const inTxn = await k.client.kv.txn({
        compare: [],
        success: [{ request_range: { ...all, count_only: true } }],
        failure: [],
      });
      assert.equal(Number(inTxn.responses[0].response_range.count), 17);
      // The purge took history the stream no longer holds: reads before it are compacted.
      await assert.rejects(
        k.client.kv.range({ ...all, revision: pinned }),
        (e: any) => e.code === 11 && e.details === COMPACTED,
      );
    };
    await check();
    await k.close();
    k = await startTestKine({ endpoint });
    await check();
  } finally {
    await nc.close();
    await k.close();
    await deleteBucket(bucket);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connection: a nats context file gives servers and auth; TLS flags override its files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-nats-ctx-" });
  try {
    const file = `${dir}/ctx.json`;
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        url: "nats://n1:4222,nats://n2:4223",
        user: "u",
        password: "p",
        ca: "/ctx/ca.pem",
        cert: "/ctx/cert.pem",
        key: "/ctx/key.pem",
      }),
    );
    const o = await connectionOptions(parseNatsEndpoint(`nats://?contextFile=${file}&bucket=b`), {
      certFile: "/flag/cert.pem",
      keyFile: "/flag/key.pem",
    });
    assert.deepEqual(o.servers, ["nats://n1:4222", "nats://n2:4223"]);
    assert.deepEqual([o.user, o.pass, o.name], ["u", "p", "kine using bucket: b"]);
    assert.deepEqual(o.tls, {
      caFile: "/ctx/ca.pem",
      certFile: "/flag/cert.pem",
      keyFile: "/flag/key.pem",
    });
    assert.equal(o.maxReconnectAttempts, -1, "reconnects without limit");
    const plain = await connectionOptions(parseNatsEndpoint("nats://tok@h:1"), {});
    assert.deepEqual([plain.servers, plain.token, plain.tls], [["h:1"], "tok", undefined]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("start-up against no NATS server fails at once and says why", async () => {
  const t0 = performance.now();
  await assert.rejects(
    startKine({ endpoint: "nats://127.0.0.1:1", listenAddress: "127.0.0.1:0" }, silentLogger),
    (e: Error) => /CONNECTION_REFUSED|refused/i.test(String(e)),
  );
  assert.ok(performance.now() - t0 < 10_000, "start-up hung");
});
