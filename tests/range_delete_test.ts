/**
 * DeleteRange over many keys on every backend, NATS included (there key by
 * key in key order, each delete conditional on the key's last write): the
 * count, `prev_kvs` in key order and one revision per deleted key, across
 * more than one page of keys, and with writers of the same keys racing it.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { conformance } from "./helpers/conformance.ts";
import { putAll } from "./helpers/fill.ts";

conformance(
  "DeleteRange over 1,500 keys: count, prev_kvs in key order, one revision per key",
  async (k, backend) => {
    const keys = Array.from({ length: 1500 }, (_, i) => `/rd/${String(i).padStart(4, "0")}`);
    await putAll(k.client, keys.map((key) => [key, `v${key}`] as [string, string]), backend);
    await k.client.kv.put({ key: b("/rd0"), value: b("outside") });
    const before = (await k.client.kv.range({ key: b("/rd0") })).header.revision;
    const r = await k.client.kv.deleteRange({
      key: b("/rd/"),
      range_end: b("/rd0"),
      prev_kv: true,
    });
    assert.equal(r.deleted, 1500);
    assert.deepEqual(r.prev_kvs.map((kv: any) => s(kv.key)), keys);
    assert.deepEqual(r.prev_kvs.map((kv: any) => s(kv.value)), keys.map((key) => `v${key}`));
    assert.equal(r.header.revision, before + 1500);
    const left = await k.client.kv.range({ key: b("/rd"), range_end: b("/re") });
    assert.deepEqual(left.kvs.map((kv: any) => s(kv.key)), ["/rd0"]);
  },
);

conformance(
  "DeleteRange racing writers of its keys: each key deleted once, no write lost after it",
  async (k) => {
    const keys = Array.from({ length: 40 }, (_, i) => `/rw/${String(i).padStart(2, "0")}`);
    for (const key of keys) await k.client.kv.put({ key: b(key), value: b("0") });
    let writing = true;
    const written = new Map<string, number>();
    const writers = [0, 1].map(async (w) => {
      for (let n = 1; writing; n++) {
        const key = keys[(n * 7 + w * 13) % keys.length];
        const rev = (await k.client.kv.put({ key: b(key), value: b(`${w}.${n}`) })).header.revision;
        written.set(key, Math.max(written.get(key) ?? 0, rev));
      }
    });
    const r = await k.client.kv.deleteRange({
      key: b("/rw/"),
      range_end: b("/rw0"),
      prev_kv: true,
    });
    writing = false;
    await Promise.all(writers);
    // every key was live when the delete reached it, and each went once, in key order
    assert.equal(r.deleted, keys.length);
    assert.deepEqual(r.prev_kvs.map((kv: any) => s(kv.key)), keys);
    // a put acknowledged after the delete's revision survives it
    const now = await k.client.kv.range({ key: b("/rw/"), range_end: b("/rw0") });
    for (const [key, rev] of written) {
      if (rev > r.header.revision) assert.ok(now.kvs.some((kv: any) => s(kv.key) === key), key);
    }
  },
);
