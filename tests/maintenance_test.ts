/**
 * The Maintenance service as etcd answers it, through our gRPC client and
 * etcdctl 3.4: Status, Alarm, Defragment, Hash/HashKV, Snapshot, and the
 * Cluster header. A snapshot taken under writes is opened by a second server
 * and compared revision by revision.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { b, type EtcdClient, s } from "./helpers/client.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, type TestKine, withKine } from "./helpers/kine.ts";
import { BACKENDS, type TestBackend } from "./helpers/backends.ts";
import { putAll } from "./helpers/fill.ts";
import { conformance } from "./helpers/conformance.ts";
import { WatchClient } from "./helpers/watch.ts";
import { hashKeySpace } from "../lib/backend/hash.ts";
import type { Backend, RangeRequest } from "../lib/backend/types.ts";

const OUT_OF_RANGE = 11;
const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const FUTURE = "etcdserver: mvcc: required revision is a future revision";

async function ctl(k: TestKine, args: string[]): Promise<string> {
  const r = await etcdctl(k.endpoint, args);
  assert.equal(r.code, 0, `etcdctl ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

function fill(
  client: EtcdClient,
  prefix: string,
  n: number,
  size = 100,
  backend?: TestBackend,
): Promise<number> {
  const value = "v".repeat(size);
  const entries = Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value] as [string, string]);
  return putAll(client, entries, backend);
}

/** Every key as etcd reports it, at `revision` (0 = current). */
async function everything(client: EtcdClient, revision = 0) {
  const r = await client.kv.range({ key: b("\0"), range_end: b("\0"), revision });
  return r.kvs.map((kv: any) => ({ ...kv, key: s(kv.key), value: s(kv.value) }));
}

/** Every event from revision 1 up to `upTo`, through a watch's catch-up. */
async function history(k: TestKine, upTo: number) {
  const w = new WatchClient(k.endpoint);
  try {
    const created = await w.watch({ key: "\0", rangeEnd: "\0", startRevision: 1, prevKv: true });
    const deadline = performance.now() + 20_000;
    for (;;) {
      const events = w.events(created.watch_id);
      if (events.at(-1)?.kv.mod_revision >= upTo) {
        return events.filter((e) => e.kv.mod_revision <= upTo).map((e) => ({
          type: e.type,
          key: s(e.kv.key),
          value: s(e.kv.value),
          kv: { ...e.kv, key: undefined, value: undefined },
          prev: e.prev_kv ? s(e.prev_kv.value) : undefined,
        }));
      }
      assert.ok(performance.now() < deadline, `history reached ${events.at(-1)?.kv.mod_revision}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    await w.close();
  }
}

/** Runs the Snapshot RPC; returns the chunks' bytes and `remaining_bytes`. */
function snapshot(client: EtcdClient): Promise<{ blobs: Uint8Array[]; remaining: number[] }> {
  const call = (client.raw.maintenance as any).Snapshot({});
  const blobs: Uint8Array[] = [];
  const remaining: number[] = [];
  return new Promise((resolve, reject) => {
    call.on("data", (r: any) => {
      blobs.push(r.blob);
      remaining.push(r.remaining_bytes);
    });
    call.on("error", reject);
    call.on("end", () => resolve({ blobs, remaining }));
  });
}

conformance(
  "Status: header, ids, raft term/index, sizes; MemberList header",
  async (k, backend) => {
    const rev = await fill(k.client, "/st/", 300, 100, backend);
    const st = await k.client.maintenance.status({});
    assert.equal(st.header.revision, rev);
    assert.equal(st.header.raft_term, 1);
    assert.ok(st.header.cluster_id > 0 && st.header.member_id > 0);
    assert.equal(st.leader, st.header.member_id);
    assert.deepEqual([st.raftIndex, st.raftTerm, st.raftAppliedIndex], [rev, 1, rev]);
    assert.ok(
      st.dbSizeInUse > 0 && st.dbSizeInUse <= st.dbSize,
      `${st.dbSizeInUse} ${st.dbSize}`,
    );
    assert.equal(st.version, "3.5.13");
    assert.equal(st.isLearner, false);
    const ml = await k.client.cluster.memberList({});
    assert.deepEqual(ml.header, st.header);
    assert.equal(ml.members[0].ID, st.header.member_id);
    // Status reads no keys: fast whatever the store holds
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) await k.client.maintenance.status({});
    const each = (performance.now() - t0) / 20;
    console.log(`Status: ${each.toFixed(2)} ms per call`);
    assert.ok(each < 50, `${each} ms per Status`);
  },
  { emulatedEtcdVersion: "3.5.13" },
);

Deno.test("two servers on one database: one cluster id, their own member ids, stable across restarts", async () => {
  const a = await startTestKine();
  const endpoint = `sqlite://${a.dir}/state.db`;
  let b2 = await startTestKine({ endpoint });
  try {
    const [sa, sb] = [
      await a.client.maintenance.status({}),
      await b2.client.maintenance.status({}),
    ];
    assert.equal(sa.header.cluster_id, sb.header.cluster_id);
    assert.notEqual(sa.header.member_id, sb.header.member_id);
    const port = b2.endpoint.split(":")[1];
    await b2.close();
    b2 = await startTestKine({ endpoint, listenAddress: `127.0.0.1:${port}` });
    const again = await b2.client.maintenance.status({});
    assert.deepEqual(
      [again.header.cluster_id, again.header.member_id],
      [sb.header.cluster_id, sb.header.member_id],
    );
  } finally {
    await b2.close();
    await a.close();
  }
});

Deno.test("Alarm: none to list or disarm; etcdctl alarm list and disarm", () =>
  withKine(async (k) => {
    const list = await k.client.maintenance.alarm({ action: "GET" });
    assert.deepEqual(list.alarms, []);
    assert.ok(list.header.member_id > 0);
    assert.deepEqual((await k.client.maintenance.alarm({ action: "DEACTIVATE" })).alarms, []);
    assert.equal(await ctl(k, ["alarm", "list"]), "");
    assert.equal(await ctl(k, ["alarm", "disarm"]), "");
  }));

Deno.test("Defragment on SQLite gives free pages back, once by VACUUM, then in steps; writes go on", () =>
  withKine(async (k) => {
    const path = `${k.dir}/state.db`;
    const churn = async (prefix: string) => {
      await fill(k.client, prefix, 3000, 1000);
      await k.client.kv.deleteRange({ key: b(prefix), range_end: b(prefix.slice(0, -1) + "0") });
      await k.client.kv.compact({ revision: k.kine.backend.currentRevision() });
      const st = await k.client.maintenance.status({});
      assert.ok(st.dbSize - st.dbSizeInUse > 2_000_000, `free ${st.dbSize - st.dbSizeInUse}`);
      return st;
    };
    const autoVacuum = () => {
      const db = new DatabaseSync(path, { readOnly: true });
      try {
        return (db.prepare("PRAGMA auto_vacuum").get() as { auto_vacuum: number }).auto_vacuum;
      } finally {
        db.close();
      }
    };
    assert.equal(autoVacuum(), 0);
    const before = await churn("/d1/");
    let t0 = performance.now();
    assert.equal(await ctl(k, ["defrag"]), `Finished defragmenting etcd member[${k.endpoint}]\n`);
    const vacuumMs = performance.now() - t0;
    const after = await k.client.maintenance.status({});
    assert.ok(after.dbSize < before.dbSize / 2, `${before.dbSize} → ${after.dbSize}`);
    assert.equal(autoVacuum(), 2, "switched to incremental vacuum");
    // the second time in steps, with writes in between
    const second = await churn("/d2/");
    t0 = performance.now();
    const writes = fill(k.client, "/during/", 500);
    await k.client.maintenance.defragment({});
    const stepsMs = performance.now() - t0;
    await writes;
    const done = await k.client.maintenance.status({});
    assert.ok(done.dbSize < second.dbSize / 2, `${second.dbSize} → ${done.dbSize}`);
    assert.equal(
      (await k.client.kv.range({ key: b("/during/"), range_end: b("/during0") })).count,
      500,
    );
    console.log(`defrag: VACUUM ${vacuumMs.toFixed(0)} ms, incremental ${stepsMs.toFixed(0)} ms`);
    // nothing free: nothing to do
    await k.client.maintenance.defragment({});
  }, { compactMinRetain: 0 }));

Deno.test("[memory] Defragment succeeds with nothing to do", () =>
  withKine(
    async (k) => {
      assert.ok((await k.client.maintenance.defragment({})).header.revision > 0);
    },
    {},
    BACKENDS[1],
  ));

Deno.test("HashKV: one hash for two servers on one database, across restarts, per revision; etcdctl endpoint hashkv", async () => {
  let a = await startTestKine({ compactMinRetain: 0 });
  const endpoint = `sqlite://${a.dir}/state.db`;
  const other = await startTestKine({ endpoint });
  try {
    const r1 = await fill(a.client, "/h/", 250);
    const h1 = await a.client.maintenance.hashKV({ revision: 0 });
    assert.equal(h1.hash_revision, r1);
    assert.equal(h1.header.revision, r1);
    assert.equal(h1.compact_revision, 0); // never compacted
    assert.deepEqual(await other.client.maintenance.hashKV({ revision: r1 }), {
      ...h1,
      header: {
        ...h1.header,
        member_id: (await other.client.maintenance.status({})).header.member_id,
      },
    });
    assert.equal((await a.client.maintenance.hash({})).hash, h1.hash);
    // any change changes it; the old revision keeps its hash
    const r2 = (await a.client.kv.put({ key: b("/h/1"), value: b("changed") })).header.revision;
    const h2 = await a.client.maintenance.hashKV({ revision: 0 });
    assert.notEqual(h2.hash, h1.hash);
    assert.equal(h2.hash_revision, r2);
    assert.equal((await a.client.maintenance.hashKV({ revision: r1 })).hash, h1.hash);
    await a.client.kv.put({ key: b("/h/1"), lease: 0, value: b("v".repeat(100)) });
    assert.notEqual(
      (await a.client.maintenance.hashKV({ revision: 0 })).hash,
      h1.hash,
      "mod revision counts",
    );
    // etcdctl
    const json = JSON.parse(await ctl(a, ["endpoint", "hashkv", "-w", "json"]));
    assert.equal(json[0].HashKV.hash, (await a.client.maintenance.hashKV({ revision: 0 })).hash);
    assert.match(await ctl(a, ["endpoint", "hashkv"]), new RegExp(`^${a.endpoint}, [0-9]+\\n$`));
    // compacted and future revisions, as etcd
    await a.client.kv.compact({ revision: r2 });
    for (const [revision, message] of [[r1, COMPACTED], [r2 + 100, FUTURE]] as const) {
      await assert.rejects(
        a.client.maintenance.hashKV({ revision }),
        (err: any) => err.code === OUT_OF_RANGE && err.details === message,
      );
    }
    const at = await a.client.maintenance.hashKV({ revision: r2 });
    assert.equal(at.compact_revision, r2);
    // a restart keeps it
    const before = await a.client.maintenance.hashKV({ revision: 0 });
    await other.close();
    const dir = a.dir;
    a.client.close();
    await a.kine.close();
    a = await startTestKine({ endpoint: `sqlite://${dir}/state.db` });
    a.dir = dir;
    assert.equal((await a.client.maintenance.hashKV({ revision: 0 })).hash, before.hash);
  } finally {
    await other.close().catch(() => {});
    await a.close();
  }
});

for (const backend of BACKENDS) {
  Deno.test(`[${backend.name}] snapshot under writes: etcdctl saves a SQLite file a second server serves, every key and revision equal`, async () => {
    // its own server: the copy is opened beside it and both are compared
    const k = await startTestKine({}, backend);
    let copy: TestKine | undefined;
    try {
      await fill(k.client, "/snap/", 1000, 300, backend);
      for (let i = 100; i < 110; i++) await k.client.kv.deleteRange({ key: b(`/snap/${i}`) });
      const lease = await k.client.lease.leaseGrant({ TTL: 600 });
      await k.client.kv.put({ key: b("/leased"), value: b("x"), lease: lease.ID });
      // Keys only bytes spell (text key columns refuse them): NUL, 0xFF, invalid UTF-8.
      const binary = [[0], [0, 0xff], [1, ...b("kine/auth")], [0x2f, 0xc3, 0x28]].map((x) =>
        new Uint8Array(x)
      );
      const textOnly = backend.name === "postgres" || backend.name === "mysql";
      for (const key of textOnly ? [] : binary) await k.client.kv.put({ key, value: key });
      let writing = true;
      let n = 0;
      const writer = (async () => {
        while (writing) {
          await k.client.kv.put({ key: b(`/snap/${n % 1000}`), value: b(`w${n}`) });
          if (n++ % 7 === 0) await k.client.kv.deleteRange({ key: b(`/snap/${(n * 13) % 1000}`) });
        }
      })();
      while (n < 5) await new Promise((r) => setTimeout(r, 20));
      const file = `${k.dir}/saved.db`;
      const saved = await etcdctl(k.endpoint, ["snapshot", "save", file]);
      writing = false;
      await writer;
      assert.equal(saved.code, 0, saved.stderr);
      assert.equal(saved.stdout, `Snapshot saved at ${file}\n`);

      copy = await startTestKine({ endpoint: `sqlite://${file}` });
      const st = await copy.client.maintenance.status({});
      const revision = st.header.revision;
      assert.ok(revision > 1000 && revision < k.kine.backend.currentRevision(), `${revision}`);
      // every key at the snapshot's revision, and every revision before it
      assert.deepEqual(await everything(copy.client), await everything(k.client, revision));
      assert.deepEqual(await history(copy, revision), await history(k, revision));
      assert.deepEqual(
        (await copy.client.maintenance.hashKV({ revision: 0 })).hash,
        (await k.client.maintenance.hashKV({ revision })).hash,
      );
      // leases come along; the copy takes writes
      assert.deepEqual(
        (await copy.client.lease.leaseLeases({})).leases.map((l: any) => l.ID),
        [lease.ID],
      );
      for (const key of textOnly ? [] : binary) {
        const got: { key: Uint8Array; value: Uint8Array } =
          (await copy.client.kv.range({ key })).kvs[0];
        assert.deepEqual([...got.key, ...got.value], [...key, ...key]);
      }
      const next = await copy.client.kv.put({ key: b("/after"), value: b("1") });
      assert.equal(next.header.revision, revision + 1);

      // the RPC itself: chunks counting down to 0, then the SHA-256 of what came before
      const { blobs, remaining } = await snapshot(k.client);
      assert.equal(remaining.at(-1), 0);
      assert.equal(remaining.at(-2), 0);
      const data = blobs.slice(0, -1);
      const total = data.reduce((t, x) => t + x.length, 0);
      assert.equal(remaining[0], total - data[0].length);
      const bytes = new Uint8Array(total);
      data.reduce((at, x) => (bytes.set(x, at), at + x.length), 0);
      const sha = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      assert.deepEqual([...blobs.at(-1)!], [...sha]);
      assert.deepEqual(
        new TextDecoder().decode(bytes.subarray(0, 15)),
        "SQLite format 3",
      );
    } finally {
      await copy?.close();
      await k.close();
    }
  });
}

Deno.test("HashKV reads every page at the revision it pinned, without a ReadIndex lookup per page", async () => {
  const keys = Array.from({ length: 2500 }, (_, i) => `/h/${String(i).padStart(5, "0")}`);
  const seen: RangeRequest[] = [];
  const kv = (key: string) => ({
    key,
    value: b("v"),
    createRevision: 2,
    modRevision: 2,
    version: 1,
    lease: 0,
  });
  const backend = {
    status: () => Promise.resolve({ revision: 9, compactRevision: 1, dbSize: 0, dbSizeInUse: 0 }),
    range: (r: RangeRequest) => {
      seen.push(r);
      const from = keys.findIndex((k) => k >= r.key);
      const kvs = keys.slice(from, from + r.limit).map(kv);
      const more = from + r.limit < keys.length;
      const nextKey = more ? kvs[kvs.length - 1].key + "\0" : undefined;
      return Promise.resolve({ revision: 9, kvs, count: kvs.length, more, nextKey });
    },
  } as unknown as Backend;
  const { revision } = await hashKeySpace(backend, 0);
  assert.equal(revision, 9);
  assert.equal(seen.length, 3);
  assert.ok(seen.every((r) => r.serializable && r.revision === 9));
});
