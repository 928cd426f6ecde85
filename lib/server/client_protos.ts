/**
 * grpc-js client stubs of kine's protos, for tests and the bench. Apart from proto.ts so that the
 * server never loads grpc-js (it serves with its own HTTP/2 layer, lib/server/h2/).
 *
 * @module
 */
import * as grpc from "@grpc/grpc-js";
import { loadProtoFile } from "./proto.ts";

/** Client stubs (grpc-js) of the etcd API subset and gRPC health. */
export function loadProtos(): { etcd: any; health: any } {
  const load = (file: string) => grpc.loadPackageDefinition(loadProtoFile(file));
  return {
    etcd: load("etcd.proto").etcdserverpb,
    health: (load("health.proto").grpc as any).health.v1,
  };
}
