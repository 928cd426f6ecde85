/** The shared NATS server of the test machine, and buckets made for one test each. */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { leaseBucket } from "../../lib/backend/nats/leases.ts";

/** The nats-server (with JetStream) every NATS test uses; `.ci/run` starts it. */
export const SHARED_NATS = "127.0.0.1:4222";

/** A bucket name unique to a test directory (`kine-test-XXXX`). */
export function bucketFor(dir: string): string {
  return "kine_" + dir.split("/").pop()!.replace(/[^-\w]/g, "_");
}

/** Deletes a bucket and its lease bucket from the server at `server`. */
export async function deleteBucket(bucket: string, server = SHARED_NATS): Promise<void> {
  const nc = await connect({ servers: server });
  try {
    const jsm = await jetstreamManager(nc);
    for (const name of [bucket, leaseBucket(bucket)]) {
      await jsm.streams.delete(`KV_${name}`).catch(() => false);
    }
  } finally {
    await nc.close();
  }
}
