/**
 * Several kine processes on one database (SQLite file, PostgreSQL, MariaDB):
 * leases shared across them, watches on every process that see every write
 * exactly once and in order, optimistic updates racing through different
 * processes, compaction while the others write, and kill -9 of one of them.
 */
import assert from "node:assert/strict";
import { MYSQL, POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { b, type EtcdClient, s } from "./helpers/client.ts";
import { type Cluster, type Member, startCluster } from "./helpers/cluster.ts";
import { KeepAlive } from "./helpers/keepalive.ts";
import { key, value, WatchClient } from "./helpers/watch.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAILED_PRECONDITION = 9;

/** A write a client got an answer for. */
interface Ack {
  type: "PUT" | "DELETE";
  key: string;
  value: string;
  revision: number;
  /** performance.now() when the answer arrived. */
  at: number;
  /** Index of the member that answered. */
  via: number;
}

async function putVia(c: EtcdClient, k: string, v: string, lease = 0): Promise<number> {
  return (await c.kv.put({ key: b(k), value: b(v), lease })).header.revision;
}

async function keys(c: EtcdClient, prefix: string): Promise<string[]> {
  const r = await c.kv.range({ key: b(prefix), range_end: b(prefix.slice(0, -1) + "0") });
  return r.kvs.map((kv: any) => s(kv.key));
}

/** A watcher on `prefix` from `startRevision` on each member. */
async function watchAll(
  members: Member[],
  prefix: string,
  startRevision: number,
): Promise<{ w: WatchClient; id: number }[]> {
  return await Promise.all(members.map(async (m) => {
    const w = new WatchClient(m.target, true);
    const created = await w.watch({
      key: prefix,
      rangeEnd: prefix.slice(0, -1) + "0",
      startRevision,
    });
    return { w, id: created.watch_id };
  }));
}

/** [type, key, value, mod revision] of an event. */
const brief = (e: any) => [e.type, key(e), e.type === "DELETE" ? "" : value(e), e.kv.mod_revision];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

/**
 * The defect this suite started from: every process must know a lease that
 * any process granted, renewed or revoked, and delete a key once.
 */
async function leasesAcrossProcesses(cluster: Cluster): Promise<void> {
  const [a, bee] = cluster.members;
  const start = (await a.client.kv.range({ key: b("/") })).header.revision + 1;
  const watchers = await watchAll([a, bee], "/lease/", start);
  try {
    const long = (await a.client.lease.leaseGrant({ TTL: 60 })).ID;
    await putVia(a.client, "/lease/a", "1", long);
    await putVia(bee.client, "/lease/b", "2", long); // B accepts A's lease
    // A process that had not heard of the lease deleted such keys within a few of its ticks.
    await sleep(1500);
    for (const m of [a, bee]) {
      assert.deepEqual(await keys(m.client, "/lease/"), ["/lease/a", "/lease/b"]);
    }
    const listed = (await bee.client.lease.leaseLeases({})).leases.map((l: any) => l.ID);
    assert.ok(listed.includes(long), "B lists A's lease");
    const ttl = await bee.client.lease.leaseTimeToLive({ ID: long, keys: true });
    assert.deepEqual(ttl.keys.map(s), ["/lease/a", "/lease/b"]);
    assert.ok(ttl.TTL > 50, `TTL ${ttl.TTL}`);
    await assert.rejects(
      bee.client.lease.leaseGrant({ TTL: 5, ID: long }),
      (err: any) => err.code === FAILED_PRECONDITION,
    );

    // Keep-alives through B hold a lease granted through A past its TTL.
    const short = (await a.client.lease.leaseGrant({ TTL: 2 })).ID;
    await putVia(a.client, "/lease/short", "3", short);
    const ka = new KeepAlive(bee.target);
    try {
      for (let i = 1; i <= 8; i++) {
        ka.send(short);
        assert.equal((await ka.next(i)).TTL, 2);
        await sleep(500);
      }
      assert.ok((await keys(a.client, "/lease/")).includes("/lease/short"), "kept alive via B");
      const left = await a.client.lease.leaseTimeToLive({ ID: short });
      assert.ok(left.TTL >= 1, `A sees B's renewal: TTL ${left.TTL}`);
    } finally {
      await ka.close();
    }
    // Then it expires, deleted once, whichever process reaps it.
    const deadline = performance.now() + 10_000;
    while ((await keys(bee.client, "/lease/")).includes("/lease/short")) {
      assert.ok(performance.now() < deadline, "/lease/short outlived its lease");
      await sleep(100);
    }

    // A revoke through B deletes what was written through A before it answers.
    const third = (await a.client.lease.leaseGrant({ TTL: 60 })).ID;
    await putVia(a.client, "/lease/c", "4", third);
    await bee.client.lease.leaseRevoke({ ID: third });
    assert.ok(!(await keys(a.client, "/lease/")).includes("/lease/c"), "revoked via B");
    const gone = await a.client.lease.leaseTimeToLive({ ID: third });
    assert.equal(gone.TTL, -1);

    // Every process saw every change once: one delete each for the expired and the revoked key.
    await sleep(300);
    for (const { w, id } of watchers) {
      const events = (await w.waitEvents(id, 6, 10_000)).map(brief);
      const deletes = events.filter((e) => e[0] === "DELETE").map((e) => e[1]);
      assert.deepEqual(deletes.sort(), ["/lease/c", "/lease/short"]);
      assert.equal(events.length, 6, JSON.stringify(events));
    }
  } finally {
    for (const { w } of watchers) await w.close();
  }
}

interface LoadResult {
  acks: Ack[];
  failures: number;
  /** Optimistic updates of the shared key that won and lost. */
  won: number;
  lost: number;
}

/**
 * `perMember` writers on each member, `ops` writes each: puts and deletes of
 * the writer's own keys, and compare-and-swap rounds on one key shared by all.
 * Writes through a member `mayFail` names only count as failures.
 */
async function load(
  members: Member[],
  perMember: number,
  ops: number,
  mayFail: (via: number) => boolean = () => false,
): Promise<LoadResult> {
  const acks: Ack[] = [];
  let failures = 0, won = 0, lost = 0;
  const writer = async (via: number, w: number) => {
    const c = members[via].client;
    for (let i = 0; i < ops; i++) {
      const k = `/ha/${via}-${w}/${i % 4}`;
      try {
        if (i % 7 === 6) {
          const r = await c.kv.deleteRange({ key: b(k) });
          if (r.deleted > 0) {
            acks.push({
              type: "DELETE",
              key: k,
              value: "",
              revision: r.header.revision,
              at: performance.now(),
              via,
            });
          }
        } else if (i % 5 === 4) {
          const shared = "/ha/shared";
          const cur = (await c.kv.range({ key: b(shared) })).kvs[0];
          const mod = cur ? Number(cur.mod_revision) : 0;
          const v = `${via}-${w}-${i}`;
          const r = await c.kv.txn({
            compare: [{ key: b(shared), target: "MOD", result: "EQUAL", mod_revision: mod }],
            success: [{ request_put: { key: b(shared), value: b(v) } }],
            failure: [{ request_range: { key: b(shared) } }],
          });
          if (r.succeeded) {
            won++;
            acks.push({
              type: "PUT",
              key: shared,
              value: v,
              revision: r.header.revision,
              at: performance.now(),
              via,
            });
          } else {
            // The loser is told the current value, which a later write made.
            lost++;
            const now = r.responses[0].response_range.kvs[0];
            assert.ok(Number(now.mod_revision) > mod, "a failed compare shows a newer value");
          }
        } else {
          const v = `${via}-${w}-${i}`;
          const revision = await putVia(c, k, v);
          acks.push({ type: "PUT", key: k, value: v, revision, at: performance.now(), via });
        }
      } catch (err) {
        if (!mayFail(via)) throw err;
        failures++;
      }
    }
  };
  await Promise.all(
    members.flatMap((_, via) => Array.from({ length: perMember }, (_, w) => writer(via, w))),
  );
  return { acks, failures, won, lost };
}

/** Waits until `w` has events up to `revision` on `id`; returns them. */
async function eventsUpTo(w: WatchClient, id: number, revision: number): Promise<any[]> {
  const deadline = performance.now() + 30_000;
  for (;;) {
    const events = w.events(id);
    if (events.length > 0 && Number(events[events.length - 1].kv.mod_revision) >= revision) {
      return events;
    }
    assert.ok(
      performance.now() < deadline,
      `watch stalled at ${events.at(-1)?.kv.mod_revision} short of ${revision}`,
    );
    await sleep(50);
  }
}

/** Cross-process delivery times (ms): a write acknowledged by one member → its event on another. */
function deliveries(acks: Ack[], watchers: { w: WatchClient; id: number }[]): number[] {
  const byRevision = new Map(acks.map((a) => [a.revision, a]));
  const times: number[] = [];
  watchers.forEach(({ w, id }, member) => {
    for (const r of w.responses) {
      if (r.watch_id !== id) continue;
      for (const e of r.events ?? []) {
        const ack = byRevision.get(Number(e.kv.mod_revision));
        if (ack && ack.via !== member) times.push(Math.max(0, r.at - ack.at));
      }
    }
  });
  return times.sort((x, y) => x - y);
}

/**
 * A mixed load over three processes with a watcher on each, and a
 * compaction through one of them while the others write: every watcher's
 * events equal the acknowledged writes, in revision order.
 */
async function loadAndCompact(cluster: Cluster, name: string): Promise<void> {
  const { members } = cluster;
  const start = (await members[0].client.kv.range({ key: b("/") })).header.revision + 1;
  const watchers = await watchAll(members, "/ha/", start);
  try {
    const compacting = (async () => {
      // Once every watcher is past a revision, compact to it through one process mid-load.
      await sleep(300);
      const at = (await members[1].client.kv.range({ key: b("/") })).header.revision;
      await Promise.all(watchers.map(({ w, id }) => eventsUpTo(w, id, at)));
      const results = await Promise.allSettled(
        [1, 2].map((i) => members[i].client.kv.compact({ revision: at, physical: true })),
      );
      for (const r of results) {
        if (r.status === "rejected") {
          assert.match(r.reason.details, /required revision has been compacted/);
        }
      }
      return at;
    })();
    const { acks, won, lost } = await load(members, 4, 40);
    const compactedAt = await compacting;
    acks.sort((x, y) => x.revision - y.revision);
    assert.equal(new Set(acks.map((a) => a.revision)).size, acks.length, "one revision per write");
    assert.ok(won > 0, "some compare-and-swap won");
    const expected = acks.map((a) => [a.type, a.key, a.value, a.revision]);
    const last = acks[acks.length - 1].revision;
    for (const { w, id } of watchers) {
      assert.deepEqual((await eventsUpTo(w, id, last)).map(brief), expected);
    }
    await assert.rejects(
      members[0].client.kv.range({ key: b("/ha/"), revision: compactedAt - 1 }),
      /required revision has been compacted/,
    );
    const times = deliveries(acks, watchers);
    console.log(
      `[${name}] ${acks.length} writes over 3 processes (CAS won ${won}, lost ${lost}); ` +
        `cross-process delivery p50 ${percentile(times, 0.5).toFixed(1)} ms, ` +
        `p99 ${percentile(times, 0.99).toFixed(1)} ms (${times.length} events)`,
    );
  } finally {
    for (const { w } of watchers) await w.close();
  }
}

/** kill -9 of one process mid-load: no acknowledged write is lost, the others carry on. */
async function killOne(cluster: Cluster): Promise<void> {
  const { members } = cluster;
  const start = (await members[0].client.kv.range({ key: b("/") })).header.revision + 1;
  const survivors = members.slice(0, 2);
  const watchers = await watchAll(survivors, "/ha/", start);
  try {
    const victim = members[2];
    let killed = false;
    const loading = load(members, 3, 40, (via) => killed && members[via] === victim);
    await sleep(400);
    killed = true;
    await victim.child.kill();
    const { acks } = await loading;
    // The survivors keep serving writes.
    for (const [i, m] of survivors.entries()) {
      const revision = await putVia(m.client, `/ha/after/${i}`, "x");
      acks.push({ type: "PUT", key: `/ha/after/${i}`, value: "x", revision, at: 0, via: i });
    }
    acks.sort((x, y) => x.revision - y.revision);
    const last = acks[acks.length - 1].revision;
    const lists = await Promise.all(watchers.map(({ w, id }) => eventsUpTo(w, id, last)));
    // Both survivors saw the same history, and it holds every acknowledged write.
    assert.deepEqual(lists[0].map(brief), lists[1].map(brief));
    const seen = new Set(lists[0].map((e) => JSON.stringify(brief(e))));
    for (const a of acks) {
      assert.ok(
        seen.has(JSON.stringify([a.type, a.key, a.value, a.revision])),
        `acknowledged ${a.type} ${a.key}@${a.revision} missing`,
      );
    }
    // A fresh watch from history agrees with the live ones.
    const [replay] = await watchAll([survivors[0]], "/ha/", start);
    try {
      assert.deepEqual(
        (await eventsUpTo(replay.w, replay.id, last)).map(brief),
        lists[0].map(brief),
      );
    } finally {
      await replay.w.close();
    }
  } finally {
    for (const { w } of watchers) await w.close();
  }
}

function haSuite(backend: TestBackend): void {
  Deno.test(`[${backend.name}] several kine processes on one database`, async (t) => {
    const cluster = await startCluster(backend, 3, ["--compact-min-retain", "0"]);
    try {
      await t.step(
        "leases granted, kept alive, revoked and expired across processes",
        () => leasesAcrossProcesses(cluster),
      );
      await t.step(
        "watches on every process see every write once, in order, with compaction",
        () => loadAndCompact(cluster, backend.name),
      );
      await t.step(
        "kill -9 of one process mid-load loses no acknowledged write",
        () => killOne(cluster),
      );
    } finally {
      await cluster.close();
    }
  });
}

for (const backend of [SQLITE, POSTGRES, MYSQL]) haSuite(backend);
