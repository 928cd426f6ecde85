/**
 * WatchResponse encoding that encodes each event once, however many watches
 * send it: every watch of a key range gets the same event (kube's prefix
 * watchers all get every write, its value and previous value included), and
 * the generic encoder would convert and copy it again for each. An event is
 * encoded the first time a response carries it and kept with it (a WeakMap
 * on its wire object, which the Watch service makes once per event and
 * prev_kv choice); a response is the generic encoding of its other fields
 * followed by its events (field 11, the last one, so the bytes are those the
 * generic encoder writes).
 */
import type protobuf from "protobufjs";
import type { MethodDefinition } from "./h2/mod.ts";

/** `events` (field 11), length-delimited. */
const EVENTS_TAG = (11 << 3) | 2;

function varintSize(n: number): number {
  let size = 1;
  for (; n > 0x7f; n >>>= 7) size++;
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  for (; n > 0x7f; n >>>= 7) buf[pos++] = (n & 0x7f) | 0x80;
  buf[pos++] = n;
  return pos;
}

/** The Watch service's definitions with a response encoder that shares encoded events. */
export function withSharedWatchEvents(
  watch: Record<string, MethodDefinition>,
  root: protobuf.Root,
): Record<string, MethodDefinition> {
  const eventType = root.lookupType("etcdserverpb.Event");
  const encoded = new WeakMap<object, Uint8Array>();
  const encodeEvent = (e: object): Uint8Array => {
    let bytes = encoded.get(e);
    if (!bytes) {
      bytes = eventType.encode(eventType.fromObject(e)).finish();
      encoded.set(e, bytes);
    }
    return bytes;
  };
  const generic = watch.Watch.responseSerialize;
  const responseSerialize = (message: Record<string, unknown>) => {
    const events = message.events as object[] | undefined;
    if (!events || events.length === 0) return generic(message);
    const head = generic({ ...message, events: undefined }) as Uint8Array;
    const parts = events.map(encodeEvent);
    let size = head.length;
    for (const p of parts) size += 1 + varintSize(p.length) + p.length;
    const out = new Uint8Array(size);
    out.set(head, 0);
    let pos = head.length;
    for (const p of parts) {
      out[pos++] = EVENTS_TAG;
      pos = writeVarint(out, pos, p.length);
      out.set(p, pos);
      pos += p.length;
    }
    return out;
  };
  return { ...watch, Watch: { ...watch.Watch, responseSerialize } };
}
