/**
 * Alarms and `--quota-backend-bytes` as etcd 3.4 has them: the same
 * scenarios run against a private etcd and kine give the same answers, code
 * and text, step by step; then on every backend, alarms raised through one
 * server refuse writes on another sharing its store until disarmed, and a
 * small quota raises NOSPACE.
 */
import assert from "node:assert/strict";
import { b, type EtcdClient } from "./helpers/client.ts";
import { startEtcd } from "./helpers/etcd.ts";
import { etcdctl } from "./helpers/etcdctl.ts";
import { startTestKine, type TestKine } from "./helpers/kine.ts";
import { conformance } from "./helpers/conformance.ts";
import type { TestBackend } from "./helpers/backends.ts";

const NO_SPACE = "8 etcdserver: mvcc: database space exceeded";
const CORRUPT = "15 etcdserver: corrupt cluster";
const MiB = 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** "OK", or the error's gRPC code and text. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "OK";
  } catch (err: any) {
    return `${err.code} ${err.details}`;
  }
}

/** An AlarmResponse's alarms, sorted (etcd lists them in Go map order). */
const alarms = (r: any) =>
  r.alarms.map((a: any) => `${a.memberID ? "M" : "0"}:${a.alarm}`).sort().join(",");
const put = (c: EtcdClient, key: string, value: string | Uint8Array = "v") =>
  c.kv.put({ key: b(key), value: typeof value === "string" ? b(value) : value });
const alarm = (c: EtcdClient, action: string, type: string, memberID = 0) =>
  c.maintenance.alarm({ action, alarm: type, memberID });
/** Status errors with member ids left out (etcd's are 64-bit). */
const statusErrors = async (c: EtcdClient) =>
  ((await c.maintenance.status({})).errors as string[]).map((e) =>
    e.replace(/memberID:\d+ /, "memberID:M ")
  );

/**
 * The Alarm RPC itself, for member ids 0 and 7 (comparable across servers;
 * etcd 3.4 dies raising NONE for member 0: "cannot put key into bucket").
 */
async function alarmApi(c: EtcdClient): Promise<[string, string][]> {
  const out: [string, string][] = [];
  const step = async (name: string, p: Promise<any>) =>
    out.push([name, await p.then(alarms, (e: any) => `${e.code} ${e.details}`)]);
  await step("list", alarm(c, "GET", "NONE"));
  await step("activate NOSPACE", alarm(c, "ACTIVATE", "NOSPACE"));
  await step("activate NOSPACE again", alarm(c, "ACTIVATE", "NOSPACE"));
  await step("activate NOSPACE for 7", alarm(c, "ACTIVATE", "NOSPACE", 7));
  await step("activate NONE for 7", alarm(c, "ACTIVATE", "NONE", 7));
  await step("list all", alarm(c, "GET", "NONE"));
  await step("list NOSPACE", alarm(c, "GET", "NOSPACE"));
  await step("list CORRUPT", alarm(c, "GET", "CORRUPT"));
  out.push(["status errors", (await statusErrors(c)).sort().join("|")]);
  out.push(["put", await outcome(put(c, "/a"))]);
  await step("deactivate NOSPACE", alarm(c, "DEACTIVATE", "NOSPACE"));
  await step("deactivate NOSPACE again", alarm(c, "DEACTIVATE", "NOSPACE"));
  out.push(["put, 7 still raised", await outcome(put(c, "/a"))]);
  await step("deactivate NOSPACE for 7", alarm(c, "DEACTIVATE", "NOSPACE", 7));
  await step("deactivate NONE for 7", alarm(c, "DEACTIVATE", "NONE", 7));
  out.push(["put after", await outcome(put(c, "/a"))]);
  await step("list after", alarm(c, "GET", "NONE"));
  return out;
}

/** CORRUPT refuses every write, compaction and lease change; reads pass. */
async function corruptAlarm(c: EtcdClient): Promise<[string, string][]> {
  await put(c, "/c", "1");
  const rev = (await c.kv.range({ key: b("/c") })).header.revision;
  const { ID } = await c.lease.leaseGrant({ TTL: 60 });
  await alarm(c, "ACTIVATE", "CORRUPT");
  const read = { request_range: { key: b("/c") } };
  const del = { request_delete_range: { key: b("/c") } };
  const out: [string, string][] = [
    ["put", await outcome(put(c, "/c"))],
    ["range", await outcome(c.kv.range({ key: b("/c") }))],
    ["read txn", await outcome(c.kv.txn({ compare: [], success: [read], failure: [] }))],
    ["delete txn", await outcome(c.kv.txn({ compare: [], success: [del], failure: [] }))],
    ["delete", await outcome(c.kv.deleteRange({ key: b("/c") }))],
    ["lease grant", await outcome(c.lease.leaseGrant({ TTL: 60 }))],
    ["lease revoke", await outcome(c.lease.leaseRevoke({ ID }))],
    ["compact", await outcome(c.kv.compact({ revision: rev }))],
    ["status errors", (await statusErrors(c)).join("|")],
  ];
  await alarm(c, "DEACTIVATE", "CORRUPT");
  out.push(["put after", await outcome(put(c, "/c"))]);
  return out;
}

/** Fills the store past a small quota, then makes room the documented way and disarms. */
async function overQuota(c: EtcdClient, endpoint: string): Promise<[string, string][]> {
  const big = new Uint8Array(100_000).fill(120);
  let refused = "";
  for (let i = 0; i < 300 && !refused; i++) {
    const r = await outcome(put(c, `/q/${i}`, big));
    if (r !== "OK") refused = r;
  }
  const read = { request_range: { key: b("/q/1") } };
  const del = { request_delete_range: { key: b("/q/0") } };
  const write = { request_put: { key: b("/small"), value: b("v") } };
  const out: [string, string][] = [
    ["fill", refused],
    ["list", alarms(await alarm(c, "GET", "NONE"))],
    ["status errors", (await statusErrors(c)).join("|")],
    ["put", await outcome(put(c, "/small"))],
    [
      "txn, put in failure",
      await outcome(c.kv.txn({ compare: [], success: [], failure: [write] })),
    ],
    ["lease grant", await outcome(c.lease.leaseGrant({ TTL: 60 }))],
    ["range", await outcome(c.kv.range({ key: b("/q/1") }))],
    ["read txn", await outcome(c.kv.txn({ compare: [], success: [read], failure: [] }))],
    ["delete txn", await outcome(c.kv.txn({ compare: [], success: [del], failure: [] }))],
    ["delete range", await outcome(c.kv.deleteRange({ key: b("/q/"), range_end: b("/q0") }))],
  ];
  const rev = (await c.kv.range({ key: b("/q/1") })).header.revision;
  out.push(["compact", await outcome(c.kv.compact({ revision: rev }))]);
  out.push(["defragment", await outcome(c.maintenance.defragment({}))]);
  await sleep(1500); // kine reads the store's size once a second
  out.push(["put, still armed", await outcome(put(c, "/small"))]);
  const disarm = await etcdctl(endpoint, ["alarm", "disarm"]);
  out.push(["etcdctl alarm disarm", `${disarm.code} ${disarm.stdout.replace(/\d+/, "M")}`]);
  out.push(["put after", await outcome(put(c, "/small"))]);
  out.push(["list after", alarms(await alarm(c, "GET", "NONE"))]);
  return out;
}

Deno.test("alarms and a 2 MiB quota, side by side with etcd 3.4: the same answers at every step", async () => {
  const quota = [`--quota-backend-bytes=${2 * MiB}`];
  const etcd = await startEtcd(quota);
  let kine: TestKine | undefined;
  try {
    kine = await startTestKine({ quotaBackendBytes: 2 * MiB });
    for (const scenario of [alarmApi, corruptAlarm]) {
      assert.deepEqual(await scenario(kine.client), await scenario(etcd.client), scenario.name);
    }
    const want = await overQuota(etcd.client, etcd.endpoint);
    assert.equal(want[0][1], NO_SPACE, "etcd refused the fill");
    assert.deepEqual(await overQuota(kine.client, kine.endpoint), want);
  } finally {
    await kine?.close();
    await etcd.close();
  }
});

async function waitFor(what: string, fn: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!await fn()) {
    assert.ok(performance.now() < deadline, `timed out waiting for ${what}`);
    await sleep(50);
  }
}

conformance(
  "alarms raised through one server refuse writes through another on the store until disarmed",
  async (a, backend: TestBackend) => {
    // the memory store is one process's own: the same server plays both parts
    const other = backend.persistent
      ? await startTestKine({ endpoint: backend.endpoint(a.dir) })
      : a;
    try {
      const me = (await a.client.maintenance.status({})).header.member_id;
      const raised = await alarm(a.client, "ACTIVATE", "NOSPACE", me);
      assert.deepEqual(raised.alarms, [{ memberID: me, alarm: "NOSPACE" }]);
      await waitFor(
        "NOSPACE on the other server",
        async () => alarms(await alarm(other.client, "GET", "NONE")) === "M:NOSPACE",
      );
      assert.equal(await outcome(put(other.client, "/x")), NO_SPACE);
      assert.equal(await outcome(other.client.lease.leaseGrant({ TTL: 10 })), NO_SPACE);
      assert.equal(await outcome(other.client.kv.deleteRange({ key: b("/x") })), "OK");
      assert.equal(await outcome(other.client.kv.range({ key: b("/x") })), "OK");
      // the other server disarms it: both take writes again
      const disarmed = await alarm(other.client, "DEACTIVATE", "NOSPACE", me);
      assert.deepEqual(disarmed.alarms, [{ memberID: me, alarm: "NOSPACE" }]);
      await waitFor(
        "disarmed on the first server",
        async () => await outcome(put(a.client, "/x")) === "OK",
      );
      assert.equal(await outcome(put(other.client, "/x")), "OK");
      // CORRUPT through the other, seen by the first
      await alarm(other.client, "ACTIVATE", "CORRUPT", 7);
      await waitFor(
        "CORRUPT on the first server",
        async () => await outcome(a.client.kv.deleteRange({ key: b("/x") })) === CORRUPT,
      );
      assert.equal(await outcome(a.client.kv.range({ key: b("/x") })), "OK");
      assert.deepEqual(await statusErrors(a.client), ["memberID:M alarm:CORRUPT "]);
      assert.equal(
        (await etcdctl(a.endpoint, ["alarm", "list"])).stdout,
        "memberID:7 alarm:CORRUPT \n",
      );
      assert.equal((await etcdctl(a.endpoint, ["alarm", "disarm"])).code, 0);
      await waitFor(
        "CORRUPT disarmed on the other server",
        async () => await outcome(put(other.client, "/x")) === "OK",
      );
      assert.equal((await etcdctl(other.endpoint, ["alarm", "list"])).stdout, "");
    } finally {
      if (other !== a) await other.close();
    }
  },
);

conformance(
  "a 4 MiB --quota-backend-bytes raises NOSPACE: puts and lease grants refused, deletes and reads pass; metrics",
  async (k) => {
    const metrics = async () => await (await fetch(k.kine.metricsUrl!)).text();
    assert.match(await metrics(), /^etcd_server_quota_backend_bytes 4194304$/m);
    assert.match(await metrics(), /^kine_alarm_active\{alarm="NOSPACE"\} 0$/m);
    // random bytes: PostgreSQL would compress a repeated byte to almost nothing
    const value = crypto.getRandomValues(new Uint8Array(64 * 1024));
    let refused = "";
    let n = 0;
    for (; n < 400 && !refused; n++) {
      const r = await outcome(put(k.client, `/q/${n}`, value));
      if (r !== "OK") refused = r;
    }
    assert.equal(refused, NO_SPACE, `${n} puts of 64 KiB`);
    assert.ok(n > 16, `refused after ${n} puts of 64 KiB`);
    const me = (await k.client.maintenance.status({})).header.member_id;
    await waitFor(
      "NOSPACE listed",
      async () => alarms(await alarm(k.client, "GET", "NOSPACE")) === "M:NOSPACE",
    );
    assert.deepEqual((await alarm(k.client, "GET", "NONE")).alarms, [{
      memberID: me,
      alarm: "NOSPACE",
    }]);
    assert.match(await metrics(), /^kine_alarm_active\{alarm="NOSPACE"\} 1$/m);
    assert.equal(await outcome(put(k.client, "/small")), NO_SPACE);
    assert.equal(await outcome(k.client.lease.leaseGrant({ TTL: 10 })), NO_SPACE);
    const del = { request_delete_range: { key: b("/q/0") } };
    assert.equal(
      await outcome(k.client.kv.txn({ compare: [], success: [del], failure: [] })),
      "OK",
    );
    const gone = await k.client.kv.deleteRange({ key: b("/q/"), range_end: b("/q0") });
    assert.equal(gone.deleted, n - 2);
    assert.equal(await outcome(k.client.kv.compact({ revision: gone.header.revision })), "OK");
    assert.equal(await outcome(k.client.kv.range({ key: b("/q/1") })), "OK");
  },
  { quotaBackendBytes: 4 * MiB, metricsBindAddress: "127.0.0.1:0" },
);
