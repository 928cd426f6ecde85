import * as grpc from "@grpc/grpc-js";
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
