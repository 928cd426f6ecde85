import type { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";
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

function loadFile(file: string): loader.PackageDefinition {
  return loader.loadSync(new URL(file, PROTO_DIR).pathname, LOADER_OPTIONS);
}

/** The server's view: method definitions (path, streaming, (de)serializers) per service. */
export function loadServiceDefinitions(): Record<string, any> {
  return { ...loadFile("etcd.proto"), ...loadFile("health.proto") };
}

/** Client stubs (grpc-js) of the etcd API subset and gRPC health, for tests and the bench. */
export function loadProtos(): { etcd: any; health: any } {
  const load = (file: string) => grpc.loadPackageDefinition(loadFile(file));
  return {
    etcd: load("etcd.proto").etcdserverpb,
    health: (load("health.proto").grpc as any).health.v1,
  };
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
