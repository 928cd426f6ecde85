/**
 * The server's view of kine's .proto files (proto/): protobufjs types, and per
 * service the method definitions (path, streaming, request decoder, response
 * encoder) the HTTP/2 server routes by. Built here from the parsed files, as
 * @grpc/proto-loader builds them, without its descriptor of every file, which
 * the server never reads, and which took a fifth to a third of the main thread's start-up CPU.
 */
import type { Buffer } from "node:buffer";
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
/** The files the server serves: etcd's API and gRPC health. */
const PROTO_FILES = ["etcd.proto", "health.proto"];

/** Parsing and decoding options the translator's wire types assume (proto-loader's names). */
export const LOADER_OPTIONS: protobuf.IParseOptions & protobuf.IConversionOptions = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** kine's .proto files, parsed and resolved. */
export function loadProtoRoot(): protobuf.Root {
  const root = new protobuf.Root().loadSync(
    PROTO_FILES.map((f) => new URL(f, PROTO_DIR).pathname),
    LOADER_OPTIONS,
  );
  root.resolveAll();
  return root;
}

/** A method's definition: requests decoded to plain objects, responses encoded from them. */
function methodDefinition(service: string, method: protobuf.Method): MethodDefinition {
  const request = method.resolvedRequestType!;
  const response = method.resolvedResponseType!;
  return {
    path: `/${service}/${method.name}`,
    requestStream: Boolean(method.requestStream),
    responseStream: Boolean(method.responseStream),
    requestDeserialize: (bytes: Buffer) => request.toObject(request.decode(bytes), LOADER_OPTIONS),
    responseSerialize: (message: Record<string, unknown>) =>
      response.encode(response.fromObject(message)).finish(),
  };
}

/** Method definitions by service (`etcdserverpb.KV`, `grpc.health.v1.Health`) and method name. */
export function serviceDefinitions(
  root: protobuf.Root,
): Record<string, Record<string, MethodDefinition>> {
  const out: Record<string, Record<string, MethodDefinition>> = {};
  const visit = (ns: protobuf.NamespaceBase) => {
    for (const obj of ns.nestedArray) {
      if (obj instanceof protobuf.Service) {
        const name = obj.fullName.slice(1); // without the root's leading dot
        out[name] = Object.fromEntries(
          obj.methodsArray.map((m) => [m.name, methodDefinition(name, m)]),
        );
      } else if (obj instanceof protobuf.Namespace) visit(obj);
    }
  };
  visit(root);
  return out;
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
