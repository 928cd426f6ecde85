// Shared by the `kine migrate` tests: stores opened in process, writes and reads on them.

import { openBackend } from "../../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../../lib/mod.ts";
import { silentLogger } from "../../lib/log/mod.ts";
import {
  type Backend,
  type Event,
  FROM_KEY,
  type KeyValue,
  plainRange,
} from "../../lib/backend/types.ts";
import { AUTH_KEY } from "../../lib/auth/store.ts";
import { type MigrateOptions, parseMigrateArgs } from "../../lib/migrate/mod.ts";
import type { ProgressSink } from "../../lib/migrate/progress.ts";
import { BACKENDS, type TestBackend } from "./backends.ts";

export const enc = new TextEncoder();
export const QUIET: ProgressSink = { write: () => {}, isTerminal: false };
export const STORES = BACKENDS.filter((b) => b.name !== "memory");

export async function open(endpoint: string): Promise<Backend> {
  const { backend } = await openBackend(backendOptions(
    { ...defaultConfig(), endpoint, compactMinRetain: 0 },
    silentLogger,
  ));
  await backend.start();
  return backend;
}

export function put(backend: Backend, key: string, value: string, lease = 0) {
  return backend.txn({
    compare: [],
    success: [{
      type: "put",
      key,
      value: enc.encode(value),
      lease,
      prevKv: false,
      ignoreValue: false,
      ignoreLease: false,
    }],
    failure: [],
  });
}

export function del(backend: Backend, key: string) {
  return backend.txn({
    compare: [],
    success: [{ type: "delete", key, end: "", prevKv: false }],
    failure: [],
  });
}

/** History with updates, deletes, a re-create, a lease, the auth row and a compaction. */
export async function fillSource(backend: Backend): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 12; i++) {
      await put(backend, `/registry/pods/p${i}`, `v${round}-${"x".repeat(i * 7)}`);
    }
  }
  for (let i = 0; i < 4; i++) await del(backend, `/registry/pods/p${i}`);
  await put(backend, "/registry/pods/p1", "again");
  const lease = 7_000_000_001;
  await backend.createLease({ id: lease, ttl: 600, expiresAt: Date.now() + 600_000 });
  await put(backend, "/registry/leases/l", "held", lease);
  await put(backend, AUTH_KEY, '{"enabled":false}');
  await backend.compact(backend.currentRevision() - 10);
  for (let i = 4; i < 8; i++) await put(backend, `/registry/pods/p${i}`, "after compaction");
}

/** A KeyValue with its value as text (drivers hand out Buffers or Uint8Arrays). */
function plain(kv: KeyValue) {
  return { ...kv, value: new TextDecoder().decode(kv.value) };
}

/**
 * Every live key at a revision, as a client would see them. From `\x01`, not `\0`: on MySQL
 * (a PAD SPACE collation) a range from `\0` misses keys below a space, as the auth key is.
 */
export async function at(backend: Backend, revision: number) {
  const r = await backend.range({ ...plainRange("\x01", FROM_KEY), revision });
  return r.kvs.map(plain);
}

/** The events a watch from `from` receives up to `upTo`. */
export async function history(backend: Backend, from: number, upTo: number) {
  const events: Event[] = [];
  let done!: () => void;
  const finished = new Promise<void>((r) => done = r);
  const timer = setTimeout(() => done(), 10_000);
  const w = await backend.watch("\x01", FROM_KEY, from, (batch) => {
    events.push(...batch);
    if (events.at(-1)!.kv.modRevision >= upTo) done();
  });
  await finished;
  clearTimeout(timer);
  w.cancel();
  return events.filter((e) => e.kv.modRevision <= upTo).map((e) => ({
    type: e.type,
    kv: plain(e.kv),
    prevKv: e.prevKv && plain(e.prevKv),
  }));
}

export async function withStores(
  pair: [TestBackend, TestBackend],
  fn: (src: string, dst: string) => Promise<void>,
) {
  const dirs = [
    await Deno.makeTempDir({ prefix: "kine-mig-" }),
    await Deno.makeTempDir({
      prefix: "kine-mig-",
    }),
  ];
  // kine's own timers are unref'd (they never hold a server open): this one keeps the test alive.
  const alive = setInterval(() => {}, 1000);
  try {
    await fn(pair[0].endpoint(dirs[0]), pair[1].endpoint(dirs[1]));
  } finally {
    clearInterval(alive);
    await pair[0].cleanup?.(dirs[0]);
    await pair[1].cleanup?.(dirs[1]);
  }
}

export function options(args: string[]): MigrateOptions {
  const parsed = parseMigrateArgs(args);
  if (parsed.kind !== "options") throw new Error(`bad flags: ${args.join(" ")}`);
  return parsed.options;
}
