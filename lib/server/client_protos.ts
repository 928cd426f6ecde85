/**
 * grpc-js client stubs of kine's protos, for tests and the bench. Apart from proto.ts so that the
 * server never loads grpc-js nor @grpc/proto-loader (it serves with its own HTTP/2 layer,
 * lib/server/h2/, and its own method definitions).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import * as loader from "@grpc/proto-loader";
import { LOADER_OPTIONS } from "./proto.ts";

/** One of kine's .proto files (proto/) as @grpc/proto-loader defines it. */
export function loadProtoFile(file: string): loader.PackageDefinition {
  return loader.loadSync(new URL(`../../proto/${file}`, import.meta.url).pathname, LOADER_OPTIONS);
}

/** Client stubs (grpc-js) of the etcd API subset and gRPC health. */
export function loadProtos(): { etcd: any; health: any } {
  const load = (file: string) => grpc.loadPackageDefinition(loadProtoFile(file));
  return {
    etcd: load("etcd.proto").etcdserverpb,
    health: (load("health.proto").grpc as any).health.v1,
  };
}
