/**
 * Auth calls whose name and password fields are sent as raw bytes (the
 * generated client would send a JavaScript string's UTF-8), answered as raw
 * protobuf, for the byte-exact name and password tests.
 */
import { Buffer } from "node:buffer";
import * as grpc from "@grpc/grpc-js";

/** A length-delimited protobuf field (tag < 16, length < 128: enough for these tests). */
export function field(n: number, bytes: Uint8Array): number[] {
  if (bytes.length >= 128) throw new Error("field too long for this encoder");
  return [(n << 3) | 2, bytes.length, ...bytes];
}

/** Each length-delimited field of a flat message, by field number. */
export function fields(message: Uint8Array): Map<number, Uint8Array[]> {
  const out = new Map<number, Uint8Array[]>();
  for (let i = 0; i < message.length;) {
    const tag = message[i++];
    let len = 0;
    for (let shift = 0;; shift += 7) {
      const b = message[i++];
      len |= (b & 0x7f) << shift;
      if (b < 0x80) break;
    }
    if ((tag & 7) !== 2) throw new Error(`unexpected wire type in tag ${tag}`);
    out.set(tag >> 3, [...(out.get(tag >> 3) ?? []), message.slice(i, i + len)]);
    i += len;
  }
  return out;
}

/** Unary Auth calls with hand-encoded requests. */
export class RawAuth {
  readonly #client: grpc.Client;
  constructor(endpoint: string) {
    this.#client = new grpc.Client(endpoint, grpc.credentials.createInsecure());
  }

  call(method: string, body: number[], token?: string): Promise<Uint8Array> {
    const md = new grpc.Metadata();
    if (token) md.set("token", token);
    return new Promise((resolve, reject) =>
      this.#client.makeUnaryRequest(
        `/etcdserverpb.Auth/${method}`,
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.from(body),
        md,
        (err, res) => (err ? reject(err) : resolve(new Uint8Array(res!))),
      )
    );
  }

  close(): void {
    this.#client.close();
  }
}
