/**
 * `KV.RangeStream` (etcd 3.7) through our own gRPC client: chunks that merge
 * into exactly the Range answer, header/more/count on the last chunk only,
 * chunk sizes from 10 kvs toward ~1.5 MiB, one revision for the whole stream,
 * compacted errors before the first chunk, and a client cancel stopping the reads.
 */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { putAll } from "./helpers/fill.ts";
import type { TestBackend } from "./helpers/backends.ts";
import { type TestKine, withKine } from "./helpers/kine.ts";
import type { RangeRequest } from "../lib/backend/types.ts";
import { CHUNK_TARGET_BYTES } from "../lib/translator/range_stream.ts";

const OUT_OF_RANGE = 11;
const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const FUTURE = "etcdserver: mvcc: required revision is a future revision";

interface Streamed {
  chunks: any[];
  /** Every chunk's kvs in order, and the last chunk's header, more and count. */
  merged: { header: { revision: number }; kvs: any[]; more: boolean; count: number };
}

/** Starts a RangeStream; `onChunk` may cancel it. Resolves with the chunks, rejects with the status. */
function rangeStream(
  k: TestKine,
  request: Record<string, unknown>,
  onChunk: (chunk: any, call: grpc.ClientReadableStream<any>) => void = () => {},
): Promise<Streamed> {
  const call: grpc.ClientReadableStream<any> = (k.client.raw.kv as any).RangeStream(request);
  const chunks: any[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (c: any) => {
      chunks.push(c.range_response);
      onChunk(c.range_response, call);
    });
    call.on("error", reject);
    call.on("end", () => {
      const last = chunks[chunks.length - 1];
      if (!last) return reject(new Error("the stream ended without a chunk"));
      resolve({
        chunks,
        merged: {
          header: last.header,
          kvs: chunks.flatMap((c) => c.kvs),
          more: last.more,
          count: last.count,
        },
      });
    });
  });
}

/** The fields of a Range answer that merging the chunks must reproduce. */
function answer(r: any) {
  return {
    revision: r.header.revision,
    kvs: r.kvs.map((kv: any) => ({ ...kv, key: s(kv.key), value: s(kv.value) })),
    more: r.more,
    count: r.count,
  };
}

function fill(
  k: TestKine,
  prefix: string,
  n: number,
  value: (i: number) => string,
  backend?: TestBackend,
) {
  const entries = Array.from(
    { length: n },
    (_, i) => [`${prefix}${String(i).padStart(6, "0")}`, value(i)] as [string, string],
  );
  return putAll(k.client, entries, backend);
}

/** Runs `before` ahead of every backend read of a key under `prefix` (a slow or busy store). */
function beforeReads(k: TestKine, prefix: string, before: (r: RangeRequest) => Promise<void>) {
  const backend = k.kine.backend;
  const range = backend.range.bind(backend);
  backend.range = async (r: RangeRequest) => {
    if (r.key.startsWith(prefix)) await before(r);
    return range(r);
  };
}

conformance(
  "RangeStream: chunks merge into the Range answer; only the last carries header, more, count",
  async (k, backend) => {
    await fill(k, "/s/", 1000, (i) => "v".repeat(i % 300), backend);
    const request = { key: b("/s/"), range_end: b("/s0") };
    const { chunks, merged } = await rangeStream(k, request);
    assert.deepEqual(answer(merged), answer(await k.client.kv.range(request)));
    assert.equal(merged.kvs.length, 1000);
    assert.equal(merged.count, 1000);
    assert.ok(chunks.length > 3, `${chunks.length} chunks`);
    assert.equal(chunks[0].kvs.length, 10, "the first chunk carries 10 kvs");
    for (const c of chunks.slice(0, -1)) {
      assert.equal(c.header, null);
      assert.equal(c.more, false);
      assert.equal(c.count, 0);
    }
    assert.ok(merged.header.revision > 0);
  },
);

conformance(
  "RangeStream: limits, sorts, filters, keys-only, count-only and single keys answer as Range",
  async (k, backend) => {
    await fill(k, "/o/", 300, (i) => `value-${(i * 7919) % 300}`, backend);
    const requests = [
      { limit: 25 },
      { limit: 300 },
      { limit: 1000 },
      { sort_order: "DESCEND", sort_target: "KEY" },
      { sort_order: "ASCEND", sort_target: "VALUE", limit: 40 },
      { min_mod_revision: 100, max_mod_revision: 200 },
      { keys_only: true },
      { count_only: true },
    ].map((extra) => ({ key: b("/o/"), range_end: b("/o0"), ...extra }));
    requests.push({ key: b("/o/000042") } as any, { key: b("/o/missing") } as any);
    for (const request of requests) {
      const { merged } = await rangeStream(k, request);
      assert.deepEqual(
        answer(merged),
        answer(await k.client.kv.range(request)),
        JSON.stringify({ ...request, key: undefined, range_end: undefined }),
      );
    }
    const empty = await rangeStream(k, { key: b("/none/"), range_end: b("/none0") });
    assert.equal(empty.chunks.length, 1);
    assert.deepEqual(empty.merged.kvs, []);
    assert.ok(empty.merged.header.revision > 0);
  },
);

conformance(
  "RangeStream: chunks grow from 10 kvs toward ~1.5 MiB and shrink for large values",
  async (k, backend) => {
    await fill(k, "/g/", 200, (i) => (i < 100 ? "s" : "L".repeat(64 * 1024)), backend);
    const { chunks, merged } = await rangeStream(k, { key: b("/g/"), range_end: b("/g0") });
    assert.equal(merged.kvs.length, 200);
    const sizes = chunks.map((c) => c.kvs.length);
    assert.deepEqual(sizes.slice(0, 3), [10, 20, 40], `sizes ${sizes}`);
    for (const c of chunks) {
      const bytes = c.kvs.reduce((n: number, kv: any) => n + kv.key.length + kv.value.length, 0);
      assert.ok(bytes <= CHUNK_TARGET_BYTES, `chunk of ${bytes} bytes`);
    }
    const large = chunks.slice(-3, -1).map((c) => c.kvs.length);
    assert.ok(large.every((n) => n > 10 && n <= 24), `large-value chunks ${large}`);
  },
);

conformance(
  "RangeStream: compacted and future revisions fail before the first chunk",
  async (k, backend) => {
    await fill(k, "/c/", 20, () => "1", backend);
    const old = (await k.client.kv.range({ key: b("/c/000001") })).header.revision;
    await fill(k, "/c/", 20, () => "2", backend);
    await k.client.kv.compact({ revision: old + 1 });
    for (const [revision, message] of [[old, COMPACTED], [old + 1000, FUTURE]] as const) {
      const seen: any[] = [];
      await assert.rejects(
        rangeStream(k, { key: b("/c/"), range_end: b("/c0"), revision }, (c) => seen.push(c)),
        (err: any) => err.code === OUT_OF_RANGE && err.details === message,
      );
      assert.deepEqual(seen, []);
    }
    // at exactly the compact revision it is served
    const at = await rangeStream(k, { key: b("/c/"), range_end: b("/c0"), revision: old + 1 });
    assert.equal(at.merged.kvs.length, 20);
  },
  { compactMinRetain: 0 },
);

Deno.test("RangeStream: one revision while writes and other requests are served between chunks", () =>
  withKine(async (k) => {
    await fill(k, "/w/", 5000, (i) => `v${i}`.padEnd(200, "."));
    let pages = 0;
    let writes = 0;
    // Before each later chunk's read, clients write over the gRPC API and read back.
    beforeReads(k, "/w/", async (r) => {
      if (r.limit === 0 || pages++ === 0) return;
      for (let i = 0; i < 3; i++, writes++) {
        await k.client.kv.put({
          key: b(`/w/${String(writes * 997 % 5000).padStart(6, "0")}`),
          value: b(`new${writes}`),
        });
        await k.client.kv.put({ key: b(`/w/new-${writes}`), value: b("x") });
        await k.client.kv.deleteRange({ key: b(`/w/${String(4999 - writes).padStart(6, "0")}`) });
      }
    });
    const { merged, chunks } = await rangeStream(k, { key: b("/w/"), range_end: b("/w0") });
    assert.ok(chunks.length > 5 && writes >= 15, `${chunks.length} chunks, ${writes} writes`);
    assert.equal(merged.kvs.length, 5000);
    assert.ok(merged.kvs.every((kv: any) => s(kv.value).startsWith("v")));
    const at = await k.client.kv.range({
      key: b("/w/"),
      range_end: b("/w0"),
      revision: merged.header.revision,
    });
    // (a Range at a past revision answers with the current revision in its header, as etcd)
    assert.deepEqual(answer(merged), { ...answer(at), revision: merged.header.revision });
    const now = await k.client.kv.range({ key: b("/w/"), range_end: b("/w0") });
    assert.ok(now.header.revision > merged.header.revision);
  }));

Deno.test("RangeStream: a client cancel stops the server's reads", () =>
  withKine(async (k) => {
    await fill(k, "/x/", 20_000, () => "x".repeat(1000));
    let reads = 0;
    // A store that takes 20 ms per read, as a remote database might: the cancel lands mid-stream.
    beforeReads(k, "/x/", async () => {
      reads++;
      await new Promise((r) => setTimeout(r, 20));
    });
    const cancelled = rangeStream(k, { key: b("/x/"), range_end: b("/x0") }, (_c, call) => {
      call.cancel();
    });
    await assert.rejects(cancelled, (err: any) => err.code === 1);
    const at = reads;
    await new Promise((r) => setTimeout(r, 300));
    // The whole list takes ~20 reads: 10, 20, … 1280 kvs, then ~1500 at a time.
    assert.ok(reads <= at + 1 && reads < 8, `${reads} reads (${at} when the cancel returned)`);
    // and the server still answers
    const { merged } = await rangeStream(k, { key: b("/x/000100"), range_end: b("/x/000200") });
    assert.equal(merged.kvs.length, 100);
  }));
