/** A crash loses no acknowledged write: SIGKILL under load, restart, read everything back. */
import assert from "node:assert/strict";
import { b, connect, s } from "./helpers/client.ts";
import { kineArgs, spawnKine } from "./helpers/daemon.ts";

Deno.test("every write acknowledged before kill -9 is there after a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-crash-" });
  const path = `${dir}/state.db`;
  try {
    const first = await spawnKine(dir, kineArgs(path));
    const client = connect(first.target);
    const acked = new Map<string, string>();
    let failures = 0;
    let stop = false;
    const writers = Array.from({ length: 32 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const key = `/crash/${w}/${i % 50}`;
        const value = `${w}-${i}`;
        try {
          await client.kv.put({ key: b(key), value: b(value) });
          acked.set(key, value);
        } catch {
          failures++; // in flight when the process died: neither acknowledged nor required
          return;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const status = await first.kill();
    stop = true;
    await Promise.all(writers);
    client.close();
    assert.equal(status.signal, "SIGKILL");
    assert.ok(acked.size > 100, `only ${acked.size} keys were acknowledged`);

    const second = await spawnKine(dir, kineArgs(path));
    const reader = connect(second.target);
    try {
      const all = await reader.kv.range({ key: b("/crash/"), range_end: b("/crash0") });
      const stored = new Map<string, string>(
        all.kvs.map((kv: { key: Uint8Array; value: Uint8Array }) => [s(kv.key), s(kv.value)]),
      );
      for (const [key, value] of acked) {
        // A later write to the same key may have committed without its ack arriving.
        const got = stored.get(key);
        assert.ok(got !== undefined, `acknowledged key ${key} is gone`);
        const [w, i] = got.split("-").map(Number);
        const [, j] = value.split("-").map(Number);
        assert.ok(
          w === Number(value.split("-")[0]) && i >= j,
          `${key}: ${got} older than ${value}`,
        );
      }
    } finally {
      reader.close();
      await second.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
