/**
 * What the transport tells the auth layer about a call: the token metadata,
 * the verified client certificate's common name and the peer address. The
 * one place that knows the server's call objects (lib/server/h2, shaped like
 * grpc-js's) for this.
 */
import type { Caller } from "../auth/mod.ts";

/** The members of a call this reads (lib/server/h2's ServerCall, or grpc-js's). */
interface Call {
  metadata: { get(key: string): unknown[] };
  getPeer(): string;
  getAuthContext(): { sslPeerCertificate?: { subject?: { CN?: unknown } } } | null;
}

/** The caller of a unary or streaming call. */
export function callerOf(call: Call): Caller {
  // etcd clients send "token"; etcd's gRPC gateway forwards "authorization".
  const token = call.metadata.get("token")[0] ?? call.metadata.get("authorization")[0];
  // Set only when the TLS handshake verified the certificate against the trusted CA.
  const cn = call.getAuthContext()?.sslPeerCertificate?.subject?.CN;
  return {
    token: token === undefined ? undefined : String(token),
    commonName: typeof cn === "string" && cn !== "" ? cn : undefined,
    peer: call.getPeer(),
  };
}
