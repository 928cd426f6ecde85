/**
 * kine's own HTTP/2 + gRPC server: frames, HPACK, the connection state
 * machine with flow control and abuse limits, gRPC calls shaped like grpc-js's
 * server calls, and TCP/TLS/unix listeners.
 *
 * @module
 */
export { type ConnectionSettings, DEFAULT_SETTINGS } from "./connection.ts";
export { Metadata, type MethodDefinition, ServerCall, Status, type StatusObject } from "./grpc.ts";
export { GrpcServer, type ListenTarget, type ServerOptions, type TlsOptions } from "./server.ts";
