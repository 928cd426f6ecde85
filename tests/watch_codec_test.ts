/** The Watch response encoder that encodes each event once (lib/server/watch_codec.ts). */
import assert from "node:assert/strict";
// grpc-js brings the node types the server modules are checked with.
import type {} from "@grpc/grpc-js";
import { loadProtoRoot, serviceDefinitions } from "../lib/server/proto.ts";
import { withSharedWatchEvents } from "../lib/server/watch_codec.ts";

const root = loadProtoRoot();
const generic = serviceDefinitions(root)["etcdserverpb.Watch"];
const shared = withSharedWatchEvents(generic, root);
const bytes = (s: string) => new TextEncoder().encode(s);
/** A serializer's answer as one array: a Uint8Array, or parts that copy themselves. */
function flat(out: Uint8Array | { byteLength: number; copy(t: Uint8Array, at: number): number }) {
  if (out instanceof Uint8Array) return new Uint8Array(out);
  const all = new Uint8Array(out.byteLength);
  out.copy(all, 0);
  return all;
}
const kv = (key: string, value: string, mod: number) => ({
  key: bytes(key),
  create_revision: 3,
  mod_revision: mod,
  version: mod - 2,
  value: bytes(value),
  lease: 0,
});

Deno.test("a watch response is encoded as the generic encoder does, its events once each", () => {
  const put = { type: "PUT", kv: kv("/a", "x".repeat(300), 5), prev_kv: kv("/a", "old", 4) };
  const del = { type: "DELETE", kv: kv("/b", "", 6), prev_kv: undefined };
  const messages = [
    { header: { revision: 6 }, watch_id: 2, events: [put, del] },
    { header: { revision: 6 }, watch_id: 7, events: [put] },
    { header: { revision: 9 }, watch_id: 1, created: true },
    { header: { revision: 9 }, watch_id: -1, events: [] },
    { header: { revision: 9 }, watch_id: 3, canceled: true, cancel_reason: "gone" },
  ];
  for (const m of messages) {
    assert.deepEqual(
      flat(shared.Watch.responseSerialize(m)),
      flat(generic.Watch.responseSerialize(m)),
    );
  }
  // An event's bytes are kept: changing its wire object afterwards changes nothing.
  put.kv.value = bytes("changed");
  const again = flat(shared.Watch.responseSerialize(messages[1]));
  assert.ok(new TextDecoder().decode(again).includes("x".repeat(300)));
});
