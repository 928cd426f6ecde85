/**
 * etcd's request limits as etcd applies them (--max-txn-ops over compares,
 * branches and nested txns; --max-request-bytes on writes), malformed requests
 * answered InvalidArgument, and the write path not held by one request.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { b, connect, type EtcdClient } from "./helpers/client.ts";
import { kineArgs, spawnKine } from "./helpers/daemon.ts";
import { conformance } from "./helpers/conformance.ts";
import { withKine } from "./helpers/kine.ts";
import { loadProtos } from "../lib/server/client_protos.ts";

const INVALID_ARGUMENT = 3;
const TOO_MANY_OPS = "etcdserver: too many operations in txn request";
const TOO_LARGE = "etcdserver: request is too large";

const put = (key: string, value: Uint8Array | string = "v") => ({
  request_put: { key: b(key), value: typeof value === "string" ? b(value) : value },
});
const get = (key: string) => ({ request_range: { key: b(key) } });
const version = (key: string) => ({ key: b(key), target: "VERSION", result: "EQUAL", version: 0 });
const range = (n: number, f: (i: number) => unknown) => Array.from({ length: n }, (_, i) => f(i));

async function refused(p: Promise<unknown>, message: string) {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, INVALID_ARGUMENT, err.details);
    assert.equal(err.details, message);
    return true;
  });
}

/** A protobuf length-delimited field: tag byte, varint length, body. */
function field(tag: number, body: Uint8Array): Uint8Array {
  const len: number[] = [];
  let n = body.length;
  for (; n >= 128; n >>>= 7) len.push((n & 127) | 128);
  len.push(n);
  return new Uint8Array([tag, ...len, ...body]);
}

/**
 * A TxnRequest of `depth` txns, each the only op of its parent, with one put
 * at the bottom, encoded by hand: protobufjs will not encode one this deep.
 */
function chain(depth: number): Buffer {
  const SUCCESS = 0x12, REQUEST_PUT = 0x12, REQUEST_TXN = 0x22, KEY = 0x0a;
  let txn = field(SUCCESS, field(REQUEST_PUT, field(KEY, b("/chain"))));
  for (let i = 1; i < depth; i++) txn = field(SUCCESS, field(REQUEST_TXN, txn));
  return Buffer.from(txn);
}

/** Sends already encoded request bytes to a KV method; resolves with the error, if any. */
function rawCall(client: EtcdClient, method: string, bytes: Buffer): Promise<any> {
  return new Promise((resolve) => {
    client.raw.kv.makeUnaryRequest(
      `/etcdserverpb.KV/${method}`,
      (x: Buffer) => x,
      (x: Buffer) => x,
      bytes,
      (err) => resolve(err),
    );
  });
}

conformance(
  "--max-txn-ops counts compares and each branch, nested txns get what is left",
  async ({ client }) => {
    await client.kv.txn({ compare: range(128, (i) => version(`/c${i}`)), success: [put("/ok")] });
    await refused(client.kv.txn({ compare: range(129, (i) => version(`/c${i}`)) }), TOO_MANY_OPS);
    await refused(client.kv.txn({ success: range(129, (i) => put(`/s${i}`)) }), TOO_MANY_OPS);
    await refused(client.kv.txn({ failure: range(129, (i) => get(`/f${i}`)) }), TOO_MANY_OPS);
    // 100 nested txns of 100 puts: the nested ones may have 128 - 100 = 28 ops.
    const nested = (outer: number, inner: number) => ({
      success: range(outer, (i) => ({
        request_txn: { success: range(inner, (j) => put(`/n/${i}/${j}`)) },
      })),
    });
    const before = (await client.kv.range({ key: b("/n/"), range_end: b("/n0"), count_only: true }))
      .count;
    await refused(client.kv.txn(nested(100, 100)), TOO_MANY_OPS);
    await refused(client.kv.txn(nested(100, 29)), TOO_MANY_OPS);
    const after = await client.kv.range({ key: b("/n/"), range_end: b("/n0"), count_only: true });
    assert.equal(after.count, before, "a refused txn wrote nothing");
    const ok = await client.kv.txn(nested(100, 28));
    assert.equal(ok.succeeded, true);
    assert.equal(
      (await client.kv.range({ key: b("/n/"), range_end: b("/n0"), count_only: true })).count,
      2800,
    );
  },
  {},
  (backend) => backend.name !== "nats", // NATS refuses multi-key txns
);

conformance(
  "a txn chain etcd accepts decodes; a deeper one is too many ops, not Internal",
  async ({ client }) => {
    // Each level leaves one op less to its child: 128 levels fit, 129 do not.
    assert.equal(await rawCall(client, "Txn", chain(128)), null);
    assert.equal((await client.kv.range({ key: b("/chain") })).count, 1);
    for (const depth of [129, 1000]) {
      // 1,000 is deeper than the decoder nests: etcd decodes it and refuses it the same way.
      const err = await rawCall(client, "Txn", chain(depth));
      assert.equal(err?.code, INVALID_ARGUMENT, `${depth} levels: ${err?.details}`);
      assert.equal(err.details, TOO_MANY_OPS);
    }
  },
);

conformance(
  "--max-request-bytes: writes above 1.5 MiB are refused as etcd refuses them",
  async ({ client }) => {
    const limit = 1536 * 1024;
    await client.kv.put({ key: b("/big"), value: new Uint8Array(limit - 100) });
    await refused(client.kv.put({ key: b("/big"), value: new Uint8Array(limit) }), TOO_LARGE);
    await refused(
      client.kv.txn({ success: [put("/big", new Uint8Array(limit))] }),
      TOO_LARGE,
    );
    await refused(
      client.kv.txn({ success: range(2, (i) => put(`/big${i}`, new Uint8Array(limit * 0.6))) }),
      TOO_LARGE,
    );
    await refused(
      client.kv.deleteRange({ key: new Uint8Array(limit).fill(0x61) }),
      TOO_LARGE,
    );
    const got = await client.kv.range({ key: b("/big") });
    assert.equal(got.kvs[0].value.length, limit - 100, "the refused puts changed nothing");
    // Reads are bounded only by the gRPC message limit (limit + 512 KiB), as in etcd.
    const read = await client.kv.txn({
      compare: [{ key: b("/big"), target: "VALUE", result: "EQUAL", value: new Uint8Array(limit) }],
    });
    assert.equal(read.succeeded, false);
    await assert.rejects(
      client.kv.put({ key: b("/big"), value: new Uint8Array(limit + 512 * 1024) }),
      (err: any) => {
        assert.equal(err.code, 8, err.details); // RESOURCE_EXHAUSTED, as etcd's gRPC answers
        return true;
      },
    );
  },
  {},
  (backend) => backend.name !== "nats", // NATS: 1 MiB messages
);

Deno.test("--max-txn-ops and --max-request-bytes are configurable", () =>
  withKine(async ({ client }) => {
    await client.kv.txn({ success: range(4, (i) => put(`/k${i}`)) });
    await refused(client.kv.txn({ success: range(5, (i) => put(`/k${i}`)) }), TOO_MANY_OPS);
    await client.kv.put({ key: b("/k"), value: new Uint8Array(1000) });
    await refused(client.kv.put({ key: b("/k"), value: new Uint8Array(100_000) }), TOO_LARGE);
  }, { maxTxnOps: 4, maxRequestBytes: 64 * 1024 }));

Deno.test("a request that does not decode is InvalidArgument, never Internal", () =>
  withKine(async ({ client }) => {
    const garbage = [
      Buffer.from([0x0a, 0xff, 0x01]), // key: length past the end of the message
      Buffer.from([0x0f]), // field 1 with wire type 7, which does not exist
    ];
    for (const bytes of garbage) {
      const status = await rawCall(client, "Put", bytes);
      assert.equal(status?.code, INVALID_ARGUMENT, status?.details);
      assert.match(status.details, /^grpc: error unmarshalling request: /);
    }
    // The server is fine afterwards.
    await client.kv.put({ key: b("/after"), value: b("v") });
  }));

Deno.test("a txn of 4,096 puts (64 × 64, the most two levels may hold) lets reads in while it runs", async () => {
  // kine in its own process and the big txn sent as encoded bytes, so that only the
  // server's work is measured, not this process encoding 4,096 ops.
  const dir = await Deno.makeTempDir({ prefix: "kine-limits-" });
  const child = await spawnKine(dir, kineArgs(`${dir}/state.db`));
  const client = connect(child.target);
  try {
    const { etcd } = loadProtos();
    const big: Buffer = etcd.KV.service.Txn.requestSerialize({
      success: range(64, (i) => ({
        request_txn: { success: range(64, (j) => put(`/big/${i}/${j}`, "x".repeat(100))) },
      })),
    });
    let running = true;
    const worst = { read: 0, write: 0 };
    const probe = async (kind: "read" | "write") => {
      for (let i = 0; running; i++) {
        const t0 = performance.now();
        if (kind === "read") await client.kv.range({ key: b("/probe") });
        else await client.kv.put({ key: b("/probe"), value: b(String(i)) });
        worst[kind] = Math.max(worst[kind], performance.now() - t0);
      }
    };
    const probes = [probe("read"), probe("write")];
    await new Promise((r) => setTimeout(r, 200));
    Object.assign(worst, { read: 0, write: 0 }); // start-up of the probes is not the txn's
    const t0 = performance.now();
    assert.equal(await rawCall(client, "Txn", big), null);
    const took = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
    running = false;
    await Promise.all(probes);
    console.log(
      `4,096-put txn: ${took.toFixed(0)} ms; worst read ${worst.read.toFixed(1)} ms, ` +
        `worst write ${worst.write.toFixed(1)} ms`,
    );
    // Reads get in while the txn runs (without pacing they waited for all of it).
    // Relative, so that a loaded machine slows both sides alike.
    assert.ok(worst.read < took * 0.5, `a read waited ${worst.read} of ${took} ms`);
  } finally {
    client.close();
    await child.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
