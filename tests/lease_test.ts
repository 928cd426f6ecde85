/**
 * Leases over gRPC and etcdctl: grant/revoke/keep-alive/time-to-live/list,
 * expiry as delete rows, restarts, and upstream kine's TTL-in-the-lease-column
 * rows. Spec §6 and §13 items 37, 38 with this port's etcd-style lease IDs.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { b, s } from "./helpers/client.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, type TestKine } from "./helpers/kine.ts";
import { conformance, restartable } from "./helpers/conformance.ts";
import { KeepAlive } from "./helpers/keepalive.ts";
import { key, WatchClient } from "./helpers/watch.ts";

const NOT_FOUND = 5;
const FAILED_PRECONDITION = 9;
const OUT_OF_RANGE = 11;
const LEASE_NOT_FOUND = "etcdserver: requested lease not found";
const TWO_32 = 2 ** 32;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function grant(k: TestKine, ttl: number, id = 0): Promise<number> {
  const r = await k.client.lease.leaseGrant({ TTL: ttl, ID: id });
  assert.equal(r.TTL, ttl);
  return r.ID;
}

async function put(k: TestKine, name: string, v: string, lease = 0): Promise<number> {
  return (await k.client.kv.put({ key: b(name), value: b(v), lease })).header.revision;
}

async function exists(k: TestKine, name: string): Promise<boolean> {
  return (await k.client.kv.range({ key: b(name) })).kvs.length === 1;
}

async function rejects(p: Promise<unknown>, code: number, message: string): Promise<void> {
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code, err.details);
    assert.equal(err.details, message);
    return true;
  });
}

/**
 * Polls `name` every 50 ms until it is gone; returns when (ms after `since`)
 * the first read that found it gone was sent. Fails if a read that came back
 * before `notBefore` ms already found it gone, or nothing by `deadline` ms.
 */
async function goneAt(
  k: TestKine,
  name: string,
  since: number,
  notBefore: number,
  deadline: number,
): Promise<number> {
  for (;;) {
    const sent = performance.now() - since;
    const present = await exists(k, name);
    const back = performance.now() - since;
    if (!present) {
      assert.ok(back >= notBefore, `${name} gone ${Math.round(back)} ms in, before ${notBefore}`);
      return sent;
    }
    assert.ok(sent <= deadline, `${name} still there ${Math.round(sent)} ms in`);
    await sleep(50);
  }
}

conformance(
  "LeaseGrant, TimeToLive, Leases, Revoke: etcd-style IDs, attached keys, revoke deletes at once",
  async (k) => {
    const lease = k.client.lease;
    const ids = await Promise.all(Array.from({ length: 20 }, () => grant(k, 10)));
    assert.equal(new Set(ids).size, 20, "duplicate lease IDs");
    for (const id of ids) assert.ok(Number.isSafeInteger(id) && id >= TWO_32, `lease ID ${id}`);
    const chosen = 2 ** 40 + 7;
    assert.equal(await grant(k, 10, chosen), chosen);
    const g = await lease.leaseGrant({ TTL: 10 });
    assert.equal(g.header.revision, 2, "grant header = current revision");

    const id = ids[0];
    await put(k, "/l/a", "1", id);
    await k.client.kv.txn({
      compare: [],
      success: [{ request_put: { key: b("/l/b"), value: b("2"), lease: id } }],
      failure: [],
    });
    const got = await k.client.kv.range({ key: b("/l/"), range_end: b("/l0") });
    assert.deepEqual(got.kvs.map((kv: any) => kv.lease), [id, id]);
    const ttl = await lease.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(ttl.ID, id);
    assert.equal(ttl.grantedTTL, 10);
    assert.ok(ttl.TTL >= 9 && ttl.TTL <= 10, `TTL ${ttl.TTL}`);
    assert.deepEqual(ttl.keys.map(s), ["/l/a", "/l/b"]);
    assert.deepEqual((await lease.leaseTimeToLive({ ID: id })).keys, [], "keys only when asked");
    const listed = (await lease.leaseLeases({})).leases.map((l: any) => l.ID);
    for (const x of [...ids, chosen, g.ID]) assert.ok(listed.includes(x), `lease ${x} not listed`);
    assert.equal(listed.length, 22);

    const w = new WatchClient(k.endpoint);
    try {
      const wid = (await w.watch({ key: "/l/", rangeEnd: "/l0", prevKv: true })).watch_id;
      await lease.leaseRevoke({ ID: id });
      assert.equal(await exists(k, "/l/a"), false);
      assert.equal(await exists(k, "/l/b"), false);
      const ev = await w.waitEvents(wid, 2);
      assert.deepEqual(ev.map((e) => [e.type, key(e), s(e.prev_kv?.value), e.prev_kv?.lease]), [
        ["DELETE", "/l/a", "1", id],
        ["DELETE", "/l/b", "2", id],
      ]);
    } finally {
      await w.close();
    }
    const gone = await lease.leaseTimeToLive({ ID: id, keys: true });
    assert.equal(gone.TTL, -1);
    assert.deepEqual(gone.keys, []);
    assert.ok(!(await lease.leaseLeases({})).leases.some((l: any) => l.ID === id));
    await rejects(lease.leaseRevoke({ ID: id }), NOT_FOUND, LEASE_NOT_FOUND);
    await rejects(lease.leaseRevoke({ ID: 12345 }), NOT_FOUND, LEASE_NOT_FOUND);
  },
);

conformance(
  "LeaseGrant errors carry etcd's codes: duplicate ID FailedPrecondition, huge TTL OutOfRange",
  async (k) => {
    const id = 2 ** 36;
    await grant(k, 10, id);
    await rejects(
      k.client.lease.leaseGrant({ TTL: 10, ID: id }),
      FAILED_PRECONDITION,
      "etcdserver: lease already exists",
    );
    await rejects(
      k.client.lease.leaseGrant({ TTL: 9_000_000_001 }),
      OUT_OF_RANGE,
      "etcdserver: too large lease TTL",
    );
  },
);

conformance("a Put or Txn naming an unknown lease is NOT_FOUND and writes nothing", async (k) => {
  await rejects(
    k.client.kv.put({ key: b("/u/a"), value: b("1"), lease: 2 ** 40 }),
    NOT_FOUND,
    LEASE_NOT_FOUND,
  );
  // a small number is no TTL for new writes: this port has real leases
  await rejects(
    k.client.kv.put({ key: b("/u/a"), value: b("1"), lease: 30 }),
    NOT_FOUND,
    LEASE_NOT_FOUND,
  );
  await rejects(
    k.client.kv.txn({
      compare: [],
      success: [
        { request_put: { key: b("/u/b"), value: b("1") } },
        { request_put: { key: b("/u/c"), value: b("1"), lease: 2 ** 41 } },
      ],
      failure: [],
    }),
    NOT_FOUND,
    LEASE_NOT_FOUND,
  );
  const r = await k.client.kv.range({ key: b("/u/"), range_end: b("/u0") });
  assert.equal(r.kvs.length, 0);
  assert.equal(r.header.revision, 2);
});

conformance(
  "§38 expiry: keys go within TTL+1 s and never before TTL, as DELETE events with prev_kv",
  async (k) => {
    const w = new WatchClient(k.endpoint);
    try {
      const wid = (await w.watch({ key: "/ttl/", rangeEnd: "/ttl0", prevKv: true })).watch_id;
      const t1 = performance.now();
      const one = await grant(k, 1);
      const t2 = performance.now();
      const two = await grant(k, 2);
      await put(k, "/ttl/one", "a", one);
      await k.client.kv.txn({
        compare: [],
        success: [{ request_put: { key: b("/ttl/two"), value: b("b"), lease: two } }],
        failure: [],
      });
      const [g1, g2] = await Promise.all([
        goneAt(k, "/ttl/one", t1, 1000, 2000),
        goneAt(k, "/ttl/two", t2, 2000, 3000),
      ]);
      console.log(
        `TTL 1 key gone ${Math.round(g1)} ms after grant, TTL 2 key ${Math.round(g2)} ms`,
      );
      const ev = await w.waitEvents(wid, 4);
      assert.deepEqual(
        ev.map((e) => [
          e.type,
          key(e),
          e.kv.lease,
          e.prev_kv ? [s(e.prev_kv.value), e.prev_kv.lease] : null,
        ]),
        [
          ["PUT", "/ttl/one", one, null],
          ["PUT", "/ttl/two", two, null],
          ["DELETE", "/ttl/one", 0, ["a", one]],
          ["DELETE", "/ttl/two", 0, ["b", two]],
        ],
      );
      const t = await k.client.lease.leaseTimeToLive({ ID: one });
      assert.equal(t.TTL, -1, "an expired lease still has time to live");
      assert.equal((await k.client.lease.leaseLeases({})).leases.length, 0);
    } finally {
      await w.close();
    }
  },
);

conformance(
  "keep-alive over LeaseKeepAlive extends a lease past its TTL; it expires once they stop",
  async (k) => {
    const id = await grant(k, 1);
    await put(k, "/ka/a", "1", id);
    const ka = new KeepAlive(k.endpoint);
    try {
      const t0 = performance.now();
      let n = 0;
      let lastSent = 0;
      while (performance.now() - t0 < 2200) {
        lastSent = performance.now();
        ka.send(id);
        const r = await ka.next(++n);
        assert.equal(r.ID, id);
        assert.equal(r.TTL, 1);
        await sleep(300);
      }
      assert.equal(await exists(k, "/ka/a"), true, "expired although kept alive");
      const ttl = await k.client.lease.leaseTimeToLive({ ID: id });
      assert.equal(ttl.grantedTTL, 1);
      assert.ok(ttl.TTL >= 0 && ttl.TTL <= 1);
      // an unknown lease answers TTL 0
      ka.send(2 ** 45);
      const unknown = await ka.next(++n);
      assert.equal(unknown.ID, 2 ** 45);
      assert.equal(unknown.TTL, 0);
      await goneAt(k, "/ka/a", lastSent, 1000, 2000);
    } finally {
      await ka.close();
    }
  },
);

conformance(
  "§37 rewrite without lease detaches, with another lease re-arms, ignore_lease keeps, delete first is harmless",
  async (k) => {
    const w = new WatchClient(k.endpoint);
    try {
      const wid = (await w.watch({ key: "/r/", rangeEnd: "/r0" })).watch_id;
      const t0 = performance.now();
      const l1 = await grant(k, 1);
      const l2 = await grant(k, 2);
      for (const name of ["plain", "moved", "deleted", "ignore", "stays"]) {
        await put(k, `/r/${name}`, "1", l1);
      }
      await put(k, "/r/plain", "2");
      await put(k, "/r/moved", "2", l2);
      await k.client.kv.deleteRange({ key: b("/r/deleted") });
      await k.client.kv.put({ key: b("/r/ignore"), value: b("2"), ignore_lease: true });
      await put(k, "/r/stays", "2", l1);
      await sleep(100);
      const t = await k.client.lease.leaseTimeToLive({ ID: l1, keys: true });
      assert.deepEqual(t.keys.map(s), ["/r/ignore", "/r/stays"]);
      const t2 = await k.client.lease.leaseTimeToLive({ ID: l2, keys: true });
      assert.deepEqual(t2.keys.map(s), ["/r/moved"]);

      await goneAt(k, "/r/ignore", t0, 1000, 2000);
      await goneAt(k, "/r/stays", t0, 1000, 2000);
      assert.equal(await exists(k, "/r/plain"), true, "rewritten without lease, still expired");
      await goneAt(k, "/r/moved", t0, 2000, 3000);
      assert.equal(await exists(k, "/r/plain"), true);
      await sleep(200);
      const deletes = w.events(wid).filter((e) => e.type === "DELETE").map(key);
      assert.deepEqual(deletes.sort(), ["/r/deleted", "/r/ignore", "/r/moved", "/r/stays"]);
    } finally {
      await w.close();
    }
  },
);

conformance(
  "revoke right after a leased put deletes the key before it answers (20 rounds)",
  async (k) => {
    const late: number[] = [];
    const missing: number[] = [];
    for (let i = 0; i < 20; i++) {
      const id = await grant(k, 60);
      await put(k, `/rv/${i}`, "v", id);
      const keys = (await k.client.lease.leaseTimeToLive({ ID: id, keys: true })).keys.map(s);
      if (keys.length !== 1) missing.push(i);
      await k.client.lease.leaseRevoke({ ID: id });
      if (await exists(k, `/rv/${i}`)) late.push(i);
    }
    assert.deepEqual(late, [], "keys still present after their lease's revoke returned");
    assert.deepEqual(missing, [], "TimeToLive right after the put did not list the key");
  },
);

restartable(
  "restart keeps lease deadlines (wall clock), expires what ran out meanwhile, keeps the rest",
  async (endpoint) => {
    let k = await startTestKine({ endpoint });
    const t0 = performance.now();
    let short = 0, gone = 0, long = 0;
    try {
      short = await grant(k, 2);
      gone = await grant(k, 1);
      long = await grant(k, 60);
      await put(k, "/rs/short", "1", short);
      await put(k, "/rs/gone", "1", gone);
      await put(k, "/rs/long", "1", long);
    } finally {
      await k.close();
    }
    await sleep(1200 - (performance.now() - t0));
    k = await startTestKine({ endpoint });
    const restarted = performance.now();
    try {
      // ran out while down: deleted right after start-up
      await goneAt(k, "/rs/gone", restarted, 0, 600);
      // deadline 2 s after the grant, not 2 s after the restart
      const at = await goneAt(k, "/rs/short", t0, 2000, 3000);
      console.log(`TTL 2 key gone ${Math.round(at)} ms after its grant (restart at 1200 ms)`);
      assert.equal(await exists(k, "/rs/long"), true);
      const t = await k.client.lease.leaseTimeToLive({ ID: long, keys: true });
      assert.ok(t.TTL >= 55 && t.TTL <= 60, `TTL ${t.TTL}`);
      assert.deepEqual(t.keys.map(s), ["/rs/long"]);
      const listed = (await k.client.lease.leaseLeases({})).leases.map((l: any) => l.ID);
      assert.deepEqual(listed, [long]);
      // the reloaded lease still works for new writes and revokes
      await put(k, "/rs/more", "1", long);
      await k.client.lease.leaseRevoke({ ID: long });
      assert.equal(await exists(k, "/rs/long"), false);
      assert.equal(await exists(k, "/rs/more"), false);
    } finally {
      await k.close();
    }
  },
);

Deno.test("upstream rows with a small lease value expire that many seconds after start-up", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-legacy-lease-" });
  const file = `${dir}/kine.db`;
  try {
    let k = await startTestKine({ endpoint: `sqlite://${file}` });
    await k.close();
    // what upstream kine writes for a Put with lease=2 (TTL in seconds), and one without
    const db = new DatabaseSync(file);
    const insert = db.prepare(
      "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, " +
        "old_value) VALUES(?, 1, 0, 0, 0, ?, ?, NULL)",
    );
    insert.run("/legacy/ttl", 2, b("short-lived"));
    insert.run("/legacy/keep", 0, b("forever"));
    db.close();
    const started = performance.now();
    k = await startTestKine({ endpoint: `sqlite://${file}` });
    const w = new WatchClient(k.endpoint);
    try {
      const wid = (await w.watch({ key: "/legacy/", rangeEnd: "/legacy0", prevKv: true }))
        .watch_id;
      const kv = (await k.client.kv.range({ key: b("/legacy/ttl") })).kvs[0];
      assert.equal(kv.lease, 2);
      const at = await goneAt(k, "/legacy/ttl", started, 2000, 3200);
      console.log(`legacy lease=2 row gone ${Math.round(at)} ms after start-up began`);
      const [e] = await w.waitEvents(wid, 1);
      assert.equal(e.type, "DELETE");
      assert.equal(key(e), "/legacy/ttl");
      assert.equal(s(e.prev_kv.value), "short-lived");
      assert.equal(await exists(k, "/legacy/keep"), true);
    } finally {
      await w.close();
      await k.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

conformance("etcdctl lease grant/list/timetolive/revoke print etcd's lines", async (k) => {
  const run = async (...args: string[]) => {
    const r = await etcdctl(k.endpoint, args);
    return { ...r, out: r.stdout };
  };
  const g = await run("lease", "grant", "10");
  assert.equal(g.code, 0, g.stderr);
  const m = g.out.match(/^lease ([0-9a-f]{16}) granted with TTL\(10s\)\n$/);
  assert.ok(m, g.out);
  const hex = m[1];
  assert.ok(parseInt(hex, 16) >= TWO_32);
  assert.equal((await run("put", "--lease", hex, "/ek/a", "v")).out, "OK\n");
  assert.equal((await run("lease", "list")).out, `found 1 leases\n${hex}\n`);
  assert.equal(
    (await run("lease", "timetolive", hex, "--keys")).out,
    `lease ${hex} granted with TTL(10s), remaining(10s), attached keys([/ek/a])\n`,
  );
  assert.equal((await run("lease", "revoke", hex)).out, `lease ${hex} revoked\n`);
  assert.equal((await run("get", "/ek/a")).out, "");
  assert.equal((await run("lease", "timetolive", hex)).out, `lease ${hex} already expired\n`);
  const again = await run("lease", "revoke", hex);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /requested lease not found/);
});

conformance(
  "etcdctl lease keep-alive keeps a key past its TTL; it expires after the process ends",
  async (k) => {
    const g = await etcdctl(k.endpoint, ["lease", "grant", "1"]);
    const hex = g.stdout.split(" ")[1];
    const id = parseInt(hex, 16);
    await put(k, "/ekk/a", "1", id);
    const child = new Deno.Command("etcdctl", {
      args: [`--endpoints=${k.endpoint}`, "lease", "keep-alive", hex],
      env: { ETCDCTL_API: "3" },
      stdout: "piped",
      stderr: "null",
      stdin: "null",
    }).spawn();
    let out = "";
    const reading = (async () => {
      const dec = new TextDecoder();
      for await (const c of child.stdout) out += dec.decode(c, { stream: true });
    })();
    try {
      await sleep(2200);
      assert.equal(await exists(k, "/ekk/a"), true, "expired while etcdctl kept it alive");
    } finally {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
      await child.status;
      await reading;
    }
    const stopped = performance.now();
    assert.match(out, new RegExp(`^(lease ${hex} keepalived with TTL\\(1\\)\n)+$`));
    assert.ok(out.split("\n").length > 3, `only ${out}`);
    await goneAt(k, "/ekk/a", stopped, 0, 1600);
  },
);
