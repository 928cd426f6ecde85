/**
 * WatchResponse encoding that encodes each event once, however many watches
 * send it: every watch of a key range gets the same event (kube's prefix
 * watchers all get every write, its value and previous value included), and
 * the generic encoder would convert and copy it again for each. An event is
 * encoded the first time a response carries it and kept on its wire object
 * (`encoded`), which the Watch service shares among the watches that send
 * it (see `wireEvent` in watch.ts); a response is the generic encoding of its other fields
 * followed by its events (field 11, the last one, so the bytes are those the
 * generic encoder writes), handed to the gRPC layer in parts that it copies
 * straight into the message frame.
 */
import protobuf from "protobufjs";
import type { MethodDefinition } from "./h2/mod.ts";
import { EncodedMessage } from "../translator/range_codec.ts";

/** `events` (field 11), length-delimited. */
const EVENTS_TAG = (11 << 3) | 2;

/** The Watch service's definitions with a response encoder that shares encoded events. */
export function withSharedWatchEvents(
  watch: Record<string, MethodDefinition>,
  root: protobuf.Root,
): Record<string, MethodDefinition> {
  const eventType = root.lookupType("etcdserverpb.Event");
  /** An event as field 11 of a WatchResponse (tag, length, the Event), kept on its wire object. */
  const encodeEvent = (e: { encoded?: Uint8Array }): Uint8Array => {
    if (!e.encoded) {
      const w = protobuf.Writer.create().uint32(EVENTS_TAG).fork();
      e.encoded = eventType.encode(eventType.fromObject(e), w).ldelim().finish();
    }
    return e.encoded;
  };
  const generic = watch.Watch.responseSerialize;
  const responseSerialize = (message: Record<string, unknown>) => {
    const events = message.events as { encoded?: Uint8Array }[] | undefined;
    if (!events || events.length === 0) return generic(message);
    // The parts go straight into the gRPC frame (EncodedMessage.copy), never joined first.
    const head = generic({ ...message, events: undefined }) as Uint8Array;
    const parts = [head];
    let size = head.length;
    for (const e of events) {
      const field = encodeEvent(e);
      parts.push(field);
      size += field.length;
    }
    return new EncodedMessage(parts, size);
  };
  return { ...watch, Watch: { ...watch.Watch, responseSerialize } };
}
