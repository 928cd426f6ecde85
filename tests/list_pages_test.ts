/**
 * The translator reads an unlimited list in pages at one revision. When a
 * compaction overtakes that revision between two pages, the list is read
 * again in one go at the current revision: the client still gets one whole,
 * consistent list, as etcd would serve it.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import type { Backend, RangeRequest } from "../lib/backend/types.ts";
import { createLogger } from "../lib/log/mod.ts";
import { loadProtos } from "../lib/server/client_protos.ts";
import { type EncodedMessage, Translator } from "../lib/translator/mod.ts";

const { etcd } = loadProtos();
const enc = new TextEncoder();
const dec = new TextDecoder();

function decode(m: EncodedMessage) {
  const bytes = Buffer.alloc(m.byteLength);
  m.copy(bytes);
  return etcd.KV.service.Range.responseDeserialize(bytes);
}

const put = (key: string, value: string) => ({
  type: "put" as const,
  key,
  value: enc.encode(value),
  lease: 0,
  prevKv: false,
  ignoreValue: false,
  ignoreLease: false,
});

Deno.test("a list whose pinned revision is compacted between pages is read again whole", async () => {
  const { backend } = await openBackend(backendOptions(
    { ...defaultConfig(), endpoint: "memory://", compactMinRetain: 0 },
    createLogger({ stderr: { writeSync: (b: Uint8Array) => b.length } }),
  ));
  await backend.start();
  try {
    const keys = Array.from({ length: 2500 }, (_, i) => `/p/${String(i).padStart(5, "0")}`);
    for (let i = 0; i < keys.length; i += 100) {
      await backend.txn({
        compare: [],
        success: keys.slice(i, i + 100).map((k) => put(k, "old")),
        failure: [],
      });
    }
    // After the first page, every key is rewritten and history compacted away.
    let pages = 0;
    const racing: Backend = Object.create(backend);
    racing.range = async (r: RangeRequest) => {
      const page = r.limit > 0 ? pages++ : -1;
      const result = await backend.range(r);
      if (page === 0) {
        for (let i = 0; i < keys.length; i += 100) {
          await backend.txn({
            compare: [],
            success: keys.slice(i, i + 100).map((k) => put(k, "new")),
            failure: [],
          });
        }
        await backend.compact(backend.currentRevision());
      }
      return result;
    };
    const t = new Translator(racing, {
      autoCompaction: false,
      leaseExists: () => Promise.resolve(false),
    });
    // The request as the server hands it over: through the protobuf codec, defaults filled in.
    const range = etcd.KV.service.Range;
    const wire = range.requestDeserialize(
      range.requestSerialize({ key: enc.encode("/p/"), range_end: enc.encode("/p0") }),
    );
    const m = decode(await t.range(wire));
    assert.equal(pages, 2, "the second page found its revision compacted");
    assert.equal(Number(m.header.revision), backend.currentRevision());
    assert.deepEqual(m.kvs.map((kv: any) => dec.decode(kv.key)), keys);
    assert.ok(m.kvs.every((kv: any) => dec.decode(kv.value) === "new"));
    assert.equal(Number(m.count), 2500);
  } finally {
    await backend.close();
  }
});
