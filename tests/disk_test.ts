/**
 * SQLite's disk footprint: the WAL stays bounded under sustained writes, and
 * kine starts on a full disk, serves reads, refuses writes with Unavailable
 * and takes writes again once there is space. The full disk is a small tmpfs
 * the test mounts itself (needs root).
 */
import assert from "node:assert/strict";
import { startKine } from "../lib/mod.ts";
import { silentLogger } from "../lib/log/mod.ts";
import { plainRange } from "../lib/backend/types.ts";
import { b, connect } from "./helpers/client.ts";
import { kineArgs, spawnKine } from "./helpers/daemon.ts";

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const size = (path: string) => {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
};

/** The checkpoint sequence number in a WAL file's header (bytes 12–15, big-endian). */
function checkpointSequence(wal: string): number | undefined {
  try {
    using f = Deno.openSync(wal);
    const header = new Uint8Array(32);
    if (f.readSync(header) !== 32) return undefined;
    return new DataView(header.buffer).getUint32(12);
  } catch {
    return undefined;
  }
}

Deno.test("sqlite: the WAL stays bounded and is reset under sustained writes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-wal-" });
  const path = `${dir}/state.db`;
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    endpoint: `sqlite://${path}`,
    metricsBindAddress: "0",
  }, silentLogger);
  // Straight to the backend: the load must outrun the checkpointer, which gRPC here cannot.
  const put = (key: string, value: Uint8Array) =>
    kine.backend.txn({
      compare: [],
      success: [{
        type: "put",
        key,
        value,
        lease: 0,
        prevKv: false,
        ignoreValue: false,
        ignoreLease: false,
      }],
      failure: [],
    });
  try {
    // A few writers in small commits, as kube writes, and a reader: each commit appends
    // its pages to the WAL, so the WAL grows many times faster than the database.
    const value = new Uint8Array(256).fill(0x61);
    let running = true;
    const writer = async (w: number) => {
      for (let i = 0; running; i++) {
        await put(`/registry/pods/ns${w}/pod${i % 200}`, value);
      }
    };
    const reader = async () => {
      while (running) {
        await kine.backend.range({ ...plainRange("/registry/", "/registry0"), limit: 10 });
        await sleep(1);
      }
    };
    // The load starts the checkpoint worker: the WAL fills to 1 MiB within the first second.
    const load = [0, 1, 2, 3].map(writer).concat(reader());
    // Write until the WAL was reset three times (48 MiB went through it) or it outgrew
    // 32 MiB, at most 30 s. A reset rewinds it: its checkpoint sequence number goes up.
    const seqs = new Set<number>();
    let maxWal = 0;
    const deadline = Date.now() + 30_000;
    while (seqs.size < 4 && maxWal < 32 * MiB && Date.now() < deadline) {
      await sleep(10);
      maxWal = Math.max(maxWal, size(`${path}-wal`));
      const seq = checkpointSequence(`${path}-wal`);
      if (seq !== undefined) seqs.add(seq);
    }
    running = false;
    await Promise.all(load);
    const db = size(path);
    console.log(
      `WAL: largest ${(maxWal / MiB).toFixed(1)} MiB, ${seqs.size - 1} resets; ` +
        `database ${(db / MiB).toFixed(1)} MiB`,
    );
    assert.ok(maxWal < Math.max(64 * MiB, 4 * db), "the WAL outgrew max(64 MiB, 4 × db)");
    // Reset at 16 MiB, plus what lands while a reset waits.
    assert.ok(maxWal < 32 * MiB, `the WAL reached ${maxWal} bytes`);
    assert.ok(seqs.size >= 4, `the WAL was reset ${seqs.size - 1} times in 30 s`);
  } finally {
    await kine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Mounts a tmpfs of `mib` MiB on a fresh directory; root only. */
async function withTmpfs(mib: number, fn: (dir: string) => Promise<void>): Promise<void> {
  assert.equal(Deno.uid(), 0, "this test mounts a tmpfs: run the suite as root");
  const dir = await Deno.makeTempDir({ prefix: "kine-full-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${mib}m,mode=0700`, "tmpfs", dir],
    stderr: "piped",
  }).output();
  assert.ok(mount.success, `mount failed: ${new TextDecoder().decode(mount.stderr)}`);
  try {
    await fn(dir);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Fills the file system of `dir` to the last byte; returns the filler's path. */
async function fill(dir: string): Promise<string> {
  const path = `${dir}/filler`;
  const f = await Deno.open(path, { write: true, create: true });
  for (const chunk of [new Uint8Array(64 * 1024), new Uint8Array(512)]) {
    try {
      for (;;) await f.write(chunk);
    } catch (err) {
      if (!(err instanceof Error && /No space left/.test(err.message))) throw err;
    }
  }
  f.close();
  return path;
}

Deno.test("sqlite: kine starts on a full disk, serves reads, refuses writes, and writes again when space returns", () =>
  withTmpfs(8, async (dir) => {
    const path = `${dir}/state.db`;
    let child = await spawnKine(dir, kineArgs(path));
    let client = connect(child.target);
    const value = new Uint8Array(1000);
    for (let i = 0; i < 100; i++) await client.kv.put({ key: b(`/k/${i}`), value });
    // The disk fills up under the running daemon: it refuses writes and carries on.
    const filler = await fill(dir);
    let refused: any;
    for (let i = 0; i < 1000 && !refused; i++) {
      await client.kv.put({ key: b(`/more/${i}`), value: new Uint8Array(4000) })
        .catch((err) => refused = err);
    }
    assert.equal(refused?.code, 14, refused?.details); // UNAVAILABLE
    assert.match(refused.details, /database or disk is full/);
    client.close();
    await child.kill();

    // Started again on the full disk.
    child = await spawnKine(dir, kineArgs(path));
    client = connect(child.target);
    try {
      const r = await client.kv.range({ key: b("/k/"), range_end: b("/k0"), count_only: true });
      assert.equal(r.count, 100);
      const err: any = await client.kv.put({ key: b("/k/new"), value: new Uint8Array(5000) })
        .then(() => undefined, (e) => e);
      assert.equal(err?.code, 14, `a write on a full disk: ${err?.details}`);
      assert.match(err.details, /database or disk is full/);
      // Space returns: writes go through again, without a restart.
      await Deno.remove(filler);
      await client.kv.put({ key: b("/k/new"), value: b("x") });
      const got = await client.kv.range({ key: b("/k/new") });
      assert.equal(got.kvs.length, 1);
    } finally {
      client.close();
      await child.stop();
    }
    assert.match(child.log(), /start-up WAL checkpoint failed/);
  }));
