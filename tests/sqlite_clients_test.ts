// SQLite under its clients: several kine processes on one file (edge case 43),
// clients that disconnect, request sizes (40) and awkward keys (41).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { b, connect, type EtcdClient, s } from "./helpers/client.ts";
import { kineArgs, spawnKine } from "./helpers/daemon.ts";
import {
  all,
  byteOrder,
  createTxn,
  ERR_COMPACTED,
  header,
  kineRows,
  kvs,
  OUT_OF_RANGE,
  put,
  query,
  RESOURCE_EXHAUSTED,
  rpcError,
  sleep,
  withDir,
  withServer,
} from "./helpers/sqlite.ts";

// ---------------------------------------------------------------------------
// concurrency

Deno.test("sqlite: two kine processes, 200 concurrent writers and compactions", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    const args = kineArgs(path, "--compact-min-retain", "0");
    // Both start at once: schema, VACUUM and bookkeeping race on the same file.
    const started = await Promise.allSettled([spawnKine(dir, args), spawnKine(dir, args)]);
    const procs = started.flatMap((p) => (p.status === "fulfilled" ? [p.value] : []));
    const clients: EtcdClient[] = [];
    try {
      for (const p of started) if (p.status === "rejected") throw p.reason;
      const [A, B] = procs.map((p) => {
        const client = connect(p.target);
        clients.push(client);
        return client;
      });
      const errors: string[] = [];
      const writes: { key: string; value: string; rev: number }[] = [];

      // Seed history for the compactions to chew on.
      for (let i = 0; i < 40; i++) {
        const value = `seed${i}`;
        const key = `/conc/seed/${i % 10}`;
        writes.push({ key, value, rev: await put(i % 2 ? B : A, key, value) });
      }
      const seedRev = writes[writes.length - 1].rev;

      const op = async (i: number) => {
        const c = i % 2 ? B : A;
        const other = i % 2 ? A : B;
        try {
          switch (Math.floor(i / 2) % 4) {
            case 0: {
              const key = `/conc/put/${i}`;
              writes.push({ key, value: `p${i}`, rev: await put(c, key, `p${i}`) });
              break;
            }
            case 1: {
              const key = `/conc/txn/${i}`;
              const r = await c.kv.txn(createTxn(key, `t${i}`));
              if (!r.succeeded) errors.push(`create txn ${key} did not succeed`);
              writes.push({ key, value: `t${i}`, rev: Number(r.header.revision) });
              break;
            }
            case 2: {
              const key = `/conc/shared/${i % 3}`;
              writes.push({ key, value: `s${i}`, rev: await put(c, key, `s${i}`) });
              break;
            }
            case 3: {
              const r = await other.kv.range({ key: b("/conc/"), range_end: b("/conc0") });
              if (!(Number(r.count) >= 10)) errors.push(`range saw ${r.count} keys`);
              break;
            }
          }
        } catch (err) {
          const e = err as { code?: number; details?: string };
          errors.push(`op ${i}: ${e.code} ${e.details ?? err}`);
        }
      };
      const compact = async (c: EtcdClient, revision: number) => {
        try {
          await c.kv.compact({ revision });
        } catch (err) {
          const e = err as { code?: number; details?: string };
          errors.push(`compact ${revision}: ${e.code} ${e.details ?? err}`);
        }
      };

      const wave1 = [compact(A, seedRev)];
      for (let i = 0; i < 100; i++) wave1.push(op(i));
      await Promise.all(wave1);
      const midRev = Math.max(...writes.map((w) => w.rev));
      const wave2 = [compact(B, midRev)];
      for (let i = 100; i < 200; i++) wave2.push(op(i));
      await Promise.all(wave2);

      assert.deepEqual(errors, []);
      assert.equal(writes.length, 40 + 150);
      const revs = writes.map((w) => w.rev);
      assert.equal(
        new Set(revs).size,
        revs.length,
        "every acknowledged write has its own revision",
      );

      // Every acknowledged write is readable (through both servers); the last write of a key wins.
      const latest = new Map<string, { value: string; rev: number }>();
      for (const w of writes) {
        const seen = latest.get(w.key);
        if (!seen || w.rev > seen.rev) latest.set(w.key, w);
      }
      for (const client of [A, B]) {
        const r = await client.kv.range({ key: b("/conc/"), range_end: b("/conc0") });
        const got = new Map(kvs(r).map((kv) => [kv.key, kv]));
        assert.equal(got.size, latest.size);
        for (const [key, w] of latest) {
          assert.equal(got.get(key)?.value, w.value, key);
          assert.equal(got.get(key)?.mod, w.rev, key);
        }
      }
      const finalRev = await header(A);
      assert.equal(finalRev, Math.max(...revs));
      assert.equal(await header(B), finalRev);

      // Both compactions answered success and moved the compact revision forward. (How far
      // depends on what each instance had polled; see the lagging-instance test above.)
      const [{ prev_revision: compactRev }] = kineRows(path, "WHERE name = 'compact_rev_key'");
      assert.ok(compactRev > 2 && compactRev <= midRev, `compact revision ${compactRev}`);
      assert.deepEqual(
        await rpcError(A.kv.range({ key: b("/x"), revision: compactRev - 1 })),
        { code: OUT_OF_RANGE, details: ERR_COMPACTED },
      );
      assert.ok(Number((await all(B, compactRev)).count) > 10);

      for (const p of procs) {
        assert.ok(!p.exited(), p.log());
        assert.doesNotMatch(p.log(), /ERROR|WARN|locked/, p.log());
      }
      // SIGKILL before the clients go: a graceful close after this many calls
      // trips the Deno HTTP/2 crash (see the next test). Committed data survives.
      while (procs.length > 0) await procs.shift()!.kill();
      for (const c of clients.splice(0)) c.close();
      const bookkeeping = kineRows(path, "WHERE name = 'compact_rev_key'");
      assert.deepEqual(bookkeeping.map((r) => [r.id, r.prev_revision]), [[1, compactRev]]);
      assert.equal(kineRows(path, "WHERE name = '/registry/health'").length, 1);
    } finally {
      for (const p of procs) await p.kill();
      for (const c of clients) c.close();
    }
  });
});

Deno.test("sqlite: a kine process survives clients that disconnect after 150 calls", async () => {
  // Not SQLite-specific: found while writing the process test above. With
  // Deno 2.9.6 the kine process aborts in nghttp2 (SIGABRT, "Assertion
  // `stream->closed_next == NULL' failed" in find_stream_on_goaway_func) or
  // segfaults when clients close their connections (GOAWAY) after the process
  // served ~100+ calls in all; denoland/deno#36788 looks like the same bug.
  // kube-apiserver closes its connections whenever it restarts.
  // The crash is not certain per process (roughly 7 in 8): try three processes.
  await withDir(async (dir) => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const proc = await spawnKine(dir, kineArgs(`${dir}/state-${attempt}.db`));
      let st: Deno.CommandStatus | undefined;
      try {
        const clients = Array.from(
          { length: 5 },
          () => connect(proc.target, undefined, { "grpc.use_local_subchannel_pool": 1 }),
        );
        try {
          await Promise.all(clients.map(async (c, n) => {
            for (let i = 0; i < 30; i++) await c.kv.range({ key: b(`/r/${n}/${i}`) });
          }));
        } finally {
          for (const c of clients) c.close();
        }
        await sleep(400);
        assert.ok(!proc.exited(), `kine died:\n${proc.log()}`);
      } finally {
        st = await proc.stop();
      }
      assert.equal(st.code, 0, proc.log());
    }
  });
});

// ---------------------------------------------------------------------------
// sizes and keys

Deno.test("sqlite: values up to 1.5 MiB round-trip, larger writes are refused as etcd refuses them", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(path, async ({ client }) => {
      const big = new Uint8Array(1.5 * 1024 * 1024 - 64); // the request stays within 1.5 MiB
      for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >> 10)) & 0xff;
      const rev = Number((await client.kv.put({ key: b("/big"), value: big })).header.revision);
      const got = await client.kv.range({ key: b("/big") });
      assert.equal(got.kvs[0].value.length, big.length);
      assert.ok(Buffer.from(got.kvs[0].value).equals(Buffer.from(big)), "value bytes round-trip");
      const [stored] = query(path, "SELECT length(value) AS n FROM kine WHERE id = ?", rev);
      assert.equal(Number(stored.n), big.length);

      // Within gRPC's limit (1.5 MiB + 512 KiB) but over --max-request-bytes.
      const under = await rpcError(
        client.kv.put({ key: b("/under"), value: new Uint8Array(2 * 1024 * 1024 - 1024) }),
      );
      assert.equal(under.code, 3);
      assert.equal(under.details, "etcdserver: request is too large");
      const e = await rpcError(
        client.kv.put({ key: b("/over"), value: new Uint8Array(2 * 1024 * 1024 + 1) }),
      );
      assert.equal(e.code, RESOURCE_EXHAUSTED);
      assert.equal((await client.kv.range({ key: b("/over") })).kvs.length, 0);
      assert.equal(kineRows(path, "WHERE name IN ('/over', '/under')").length, 0);
    });
  });
});

const AWKWARD_KEYS = [
  "/k/a_b",
  "/k/a%b",
  "/k/axb",
  "/k/a",
  "/k/A",
  "/k/_",
  "/k/%",
  "/k/é",
  "/k/日本",
  "/k/\uFF61",
  "/k/\u{1F600}",
  "/k/Straße",
  "/k/STRASSE",
];

Deno.test("sqlite: keys with _, %, case and UTF-8 round-trip and sort bytewise", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/state.db`;
    await withServer(path, async ({ client }) => {
      for (const key of AWKWARD_KEYS) await put(client, key, `${key}!`);
      for (const key of AWKWARD_KEYS) {
        const r = await client.kv.range({ key: b(key) });
        assert.deepEqual(kvs(r).map((kv) => [kv.key, kv.value]), [[key, `${key}!`]]);
        const [stored] = query(path, "SELECT typeof(name) AS t FROM kine WHERE name = ?", key);
        assert.equal(stored?.t, "text", `${key} is stored as its UTF-8 text`);
      }
      const sorted = [...AWKWARD_KEYS].sort(byteOrder);
      const prefix = await client.kv.range({ key: b("/k/"), range_end: b("/k0") });
      assert.deepEqual(kvs(prefix).map((kv) => kv.key), sorted);
      assert.equal(Number(prefix.count), AWKWARD_KEYS.length);
      const fromKey = await client.kv.range({ key: b("/k/"), range_end: b("\0") });
      assert.deepEqual(kvs(fromKey).map((kv) => kv.key), [...sorted, "/registry/health"]);
      // Paging with limit follows the same byte order.
      const page = await client.kv.range({ key: b("/k/"), range_end: b("/k0"), limit: 4 });
      assert.deepEqual(kvs(page).map((kv) => kv.key), sorted.slice(0, 4));
      assert.equal(page.more, true);

      // `_` and `%` are plain bytes, not LIKE wildcards.
      const under = await client.kv.range({ key: b("/k/a_"), range_end: b("/k/a`") });
      assert.deepEqual(kvs(under).map((kv) => kv.key), ["/k/a_b"]);
      const pct = await client.kv.range({ key: b("/k/a%"), range_end: b("/k/a&") });
      assert.deepEqual(kvs(pct).map((kv) => kv.key), ["/k/a%b"]);
      // Multi-byte prefixes: range_end is the prefix with its last byte incremented.
      const ja = await client.kv.range({ key: b("/k/日"), range_end: b("/k/旦") });
      assert.deepEqual(kvs(ja).map((kv) => kv.key), ["/k/日本"]);
      const high = await client.kv.range({ key: b("/k/\uFF61"), range_end: b("/k/\uFF62") });
      assert.deepEqual(kvs(high).map((kv) => kv.key), ["/k/\uFF61"]);

      // Case matters: deleting /k/A leaves /k/a, and STRASSE is not Straße.
      const d = await client.kv.deleteRange({ key: b("/k/A") });
      assert.equal(Number(d.deleted), 1);
      assert.equal(s((await client.kv.range({ key: b("/k/a") })).kvs[0].value), "/k/a!");
      assert.equal((await client.kv.range({ key: b("/k/A") })).kvs.length, 0);
      assert.equal(s((await client.kv.range({ key: b("/k/Straße") })).kvs[0].value), "/k/Straße!");
    });
  });
});

Deno.test("sqlite: descending key sort is bytewise for UTF-8 keys", async () => {
  // U+FF61 is EF BD A1 in UTF-8 and U+1F600 is F0 9F 98 80: bytewise (etcd)
  // order puts the emoji last, UTF-16 code-unit order puts it first.
  await withDir(async (dir) => {
    await withServer(`${dir}/state.db`, async ({ client }) => {
      for (const key of AWKWARD_KEYS) await put(client, key, "v");
      const sorted = [...AWKWARD_KEYS].sort(byteOrder);
      const desc = await client.kv.range({
        key: b("/k/"),
        range_end: b("/k0"),
        sort_order: "DESCEND",
        sort_target: "KEY",
      });
      assert.deepEqual(kvs(desc).map((kv) => kv.key), [...sorted].reverse());
    });
  });
});

Deno.test("sqlite: prefix range whose end byte is not valid UTF-8 (etcdctl get --prefix)", async () => {
  // clientv3.GetPrefixRangeEnd increments the last byte: "/k/ÿ" = 2F 6B 2F C3 BF
  // gives range_end 2F 6B 2F C3 C0, which is not UTF-8. etcd compares bytes.
  await withDir(async (dir) => {
    await withServer(`${dir}/state.db`, async ({ client }) => {
      await put(client, "/k/ÿa", "v");
      await put(client, "/k/ā", "other");
      const end = b("/k/ÿ");
      end[end.length - 1]++;
      const r = await client.kv.range({ key: b("/k/ÿ"), range_end: end });
      assert.deepEqual(kvs(r).map((kv) => kv.key), ["/k/ÿa"]);
    });
  });
});
