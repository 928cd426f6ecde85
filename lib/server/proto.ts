import { grpc } from "./grpc.ts";
import * as loader from "@grpc/proto-loader";

const PROTO_DIR = new URL("../../proto/", import.meta.url);

/** Decoding options the translator's wire types assume. */
export const LOADER_OPTIONS: loader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** Service definitions and constructors of the etcd API subset and gRPC health. */
export function loadProtos(): { etcd: any; health: any } {
  const load = (file: string) =>
    grpc.loadPackageDefinition(
      loader.loadSync(new URL(file, PROTO_DIR).pathname, LOADER_OPTIONS),
    );
  return {
    etcd: load("etcd.proto").etcdserverpb,
    health: (load("health.proto").grpc as any).health.v1,
  };
}
