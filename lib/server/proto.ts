import type { Buffer } from "node:buffer";
import * as loader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { type EtcdError, tooManyOps } from "../translator/mod.ts";
import type { MethodDefinition } from "./h2/mod.ts";

/**
 * Nesting depth protobufjs decodes (its default is 100). A txn nests two
 * messages per level, and `--max-txn-ops` 128 allows 128 levels, so every
 * request etcd accepts must decode; one nested deeper than this is over the
 * ops limit anyway and is answered so (see {@link deepTxnIsTooManyOps}).
 */
const MAX_NESTING = 300;
protobuf.Reader.recursionLimit = MAX_NESTING; // decoding
protobuf.util.recursionLimit = MAX_NESTING; // converting to and from plain objects

const PROTO_DIR = new URL("../../proto/", import.meta.url);

/** Decoding options the translator's wire types assume. */
export const LOADER_OPTIONS: loader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** One of kine's .proto files (proto/) as @grpc/proto-loader defines it. */
export function loadProtoFile(file: string): loader.PackageDefinition {
  return loader.loadSync(new URL(file, PROTO_DIR).pathname, LOADER_OPTIONS);
}

/** The server's view: method definitions (path, streaming, (de)serializers) per service. */
export function loadServiceDefinitions(): Record<string, any> {
  return { ...loadProtoFile("etcd.proto"), ...loadProtoFile("health.proto") };
}

/** A request that decoded to an answer of its own: the handler replies with `error`. */
export class MalformedRequest {
  constructor(readonly error: EtcdError) {}
}

/**
 * KV with a Txn deserializer that turns "nested deeper than we decode" into
 * etcd's answer for such a txn, too many operations (etcd decodes any depth
 * and then counts). Other decoding failures stay InvalidArgument
 * "grpc: error unmarshalling request" from the server.
 */
export function deepTxnIsTooManyOps(
  kv: Record<string, MethodDefinition>,
): Record<string, MethodDefinition> {
  const decode = kv.Txn.requestDeserialize;
  const requestDeserialize = (bytes: Buffer) => {
    try {
      return decode(bytes);
    } catch (err) {
      if (!/maximum nesting depth/.test(String((err as Error)?.message))) throw err;
      return new MalformedRequest(tooManyOps());
    }
  };
  return { ...kv, Txn: { ...kv.Txn, requestDeserialize } };
}
