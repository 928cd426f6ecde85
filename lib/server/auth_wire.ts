/**
 * The Auth service's messages with their `string` fields (user and role
 * names, passwords, tokens) read and written as the bytes on the wire. etcd
 * checks no UTF-8 there: a name or password with invalid UTF-8 is stored and
 * compared exactly, and a UTF-8 decoder would turn each bad byte into U+FFFD,
 * so that `p\xffw` and `p\xfew` became one password. The handlers get and
 * give the strings lib/auth/bytes.ts makes of the bytes, which keep them all.
 */
import { Buffer } from "node:buffer";
import protobuf from "protobufjs";
import { bytesToName, nameToBytes } from "../auth/mod.ts";
import type { MethodDefinition } from "./h2/mod.ts";
import { LOADER_OPTIONS } from "./proto.ts";

/** A message type whose top-level `string` fields were turned into `bytes`; their names. */
interface ByteType {
  type: protobuf.Type;
  strings: string[];
}

function byteType(root: protobuf.Root, name: string): ByteType {
  const type = root.lookupType(name);
  const strings: string[] = [];
  for (const f of type.fieldsArray) {
    if (f.type !== "string") continue;
    f.type = "bytes";
    f.bytes = true;
    f.resolved = false;
    strings.push(f.name);
  }
  return { type, strings };
}

function mapStrings(
  o: Record<string, unknown>,
  fields: string[],
  f: (v: any) => unknown,
): Record<string, unknown> {
  const out = { ...o };
  for (const k of fields) {
    const v = out[k];
    if (v === undefined || v === null) continue;
    out[k] = Array.isArray(v) ? v.map(f) : f(v);
  }
  return out;
}

/** `service` (the Auth methods of `shared`, the server's types) with byte-exact (de)serializers. */
export function byteExactAuth(
  service: Record<string, MethodDefinition>,
  shared: protobuf.Root,
): Record<string, MethodDefinition> {
  // A copy of our own: changing its field types leaves the shared ones alone.
  const root = protobuf.Root.fromJSON(shared.toJSON());
  const out: Record<string, MethodDefinition> = { ...service };
  for (const m of root.lookupService("etcdserverpb.Auth").methodsArray) {
    const req = byteType(root, `etcdserverpb.${m.requestType}`);
    const res = byteType(root, `etcdserverpb.${m.responseType}`);
    out[m.name] = {
      ...service[m.name],
      requestDeserialize: (bytes: Buffer) => {
        const message = req.type.toObject(req.type.decode(bytes), LOADER_OPTIONS);
        return mapStrings(message, req.strings, (b: Uint8Array) => bytesToName(b));
      },
      responseSerialize: (value: Record<string, unknown>) => {
        const wire = mapStrings(value, res.strings, (s: string) => nameToBytes(s));
        return Buffer.from(res.type.encode(res.type.fromObject(wire)).finish());
      },
    };
  }
  root.resolveAll();
  return out;
}
