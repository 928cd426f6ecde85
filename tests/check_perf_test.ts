/**
 * `etcdctl check perf`, etcd's own qualification of a datastore, against kine
 * on SQLite. Its keys are the prefix plus 256 bytes: a random varint, then
 * NUL padding (bytes ≥ 0x80 that are not UTF-8 among them), its values 1 KiB
 * of NUL; at the end it deletes the prefix. Only the errors are asserted: its
 * throughput and latency verdicts depend on the machine (`deno task bench`
 * measures speed), but every request must succeed and the prefix must be empty.
 * On NATS, whose ranged delete goes key by key, `--load=m`: its final delete
 * of some 60,000 keys must fit etcdctl's 30 s deadline.
 */
import assert from "node:assert/strict";
import { etcdctl } from "./helpers/etcdctl.ts";
import { NATS } from "./helpers/backends.ts";
import { type TestKine, withKine } from "./helpers/kine.ts";

const PREFIX = "/check-perf-test/";

/** Runs `etcdctl check perf --load=<load>` and asserts its requests and final delete succeeded. */
async function checkPerf(k: TestKine, load: string): Promise<void> {
  // Keys of other clients beside the prefix: the final prefix delete must leave them.
  await k.client.kv.put({ key: new TextEncoder().encode("/other"), value: new Uint8Array(1) });
  const r = await etcdctl(k.endpoint, ["check", "perf", `--load=${load}`, `--prefix=${PREFIX}`]);
  const out = r.stdout + r.stderr;
  // "FAIL: too many errors" and "FAIL: ERROR(<error>) -> <count>" list failed requests; a
  // final delete past its deadline ends the run with "context deadline exceeded".
  assert.doesNotMatch(out, /too many errors|ERROR\(|deadline exceeded/, out);
  assert.match(out, /Throughput is \d+ writes\/s|Throughput too low/, out);
  // The tool deleted its prefix (a ranged delete over the binary keys) and nothing else.
  const enc = new TextEncoder();
  const left = await k.client.kv.range({
    key: enc.encode(PREFIX),
    range_end: enc.encode("/check-perf-test0"),
  });
  assert.equal(left.count, 0);
  assert.equal((await k.client.kv.range({ key: enc.encode("/other") })).count, 1);
  // Every put was a revision: the tool's writes reached the store.
  const status = await k.client.maintenance.status({});
  assert.ok(Number(status.header.revision) > 1000, `revision ${status.header.revision}`);
}

// Both runs take etcdctl's 60 s: they run side by side, on two servers of their own.
Deno.test("etcdctl check perf: --load=s on [sqlite] and --load=m on [nats], side by side", async () => {
  await Promise.all([
    withKine((k) => checkPerf(k, "s")),
    withKine((k) => checkPerf(k, "m"), {}, NATS),
  ]);
});
