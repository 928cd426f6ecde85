/**
 * Cross-server freshness of auth (issue 27): two kine servers on one
 * database. Once server A has acknowledged a permission revoke, a password
 * change, a user or role delete or auth disable, every request that then starts on server B is
 * judged by the new state — B's auth check waits for the backend's ReadIndex
 * barrier, which covers every write committed before it — never by the state
 * B had before. On PostgreSQL and on one SQLite file.
 */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { md } from "./helpers/auth.ts";
import { b, type EtcdClient } from "./helpers/client.ts";
import { startTestKine, type TestKine } from "./helpers/kine.ts";

const RUNS = 20;
/** Requests sent on B, one after the other, right after each change on A. */
const PROBES = 3;
const FAST = { bcryptCost: 4 };
const TENANT_PERM = { permType: "READWRITE", key: b("/t/"), range_end: b("/t0") };

/** True when the call succeeded: served. */
const served = (p: Promise<unknown>) => p.then(() => true, () => false);

async function login(c: EtcdClient, name: string, password: string): Promise<grpc.Metadata> {
  return md((await c.auth.authenticate({ name, password })).token);
}

async function until(ok: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!await ok()) {
    assert.ok(Date.now() < deadline, "B never caught up");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until B has seen auth enabled (before that, B answers "authentication is not enabled"). */
async function rootOn(c: EtcdClient): Promise<grpc.Metadata> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await login(c, "root", "rootpw");
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

for (const backend of [SQLITE, POSTGRES] as TestBackend[]) {
  Deno.test(
    `[${backend.name}] auth freshness: revoke, password change, user and role delete, disable on A hold at once on B`,
    async () => {
      const a = await startTestKine(FAST, backend);
      let bk: TestKine | undefined;
      try {
        const c = a.client;
        await c.auth.userAdd({ name: "root", password: "rootpw" });
        await c.auth.userGrantRole({ user: "root", role: "root" });
        await c.auth.roleAdd({ name: "tenant" });
        await c.auth.roleAdd({ name: "reader" });
        await c.auth.roleGrantPermission({
          name: "reader",
          perm: { permType: "READ", key: b("/r/"), range_end: b("/r0") },
        });
        for (const [user, role] of [["alice", "tenant"], ["bob", "reader"]]) {
          await c.auth.userAdd({ name: user, password: `${user}-0` });
          await c.auth.userGrantRole({ user, role });
        }
        await c.auth.authEnable({});
        const root = await login(c, "root", "rootpw");
        bk = await startTestKine({ ...FAST, endpoint: backend.endpoint(a.dir) }, backend);
        const onB = bk.client;
        await rootOn(onB);
        const stale: string[] = [];
        const probe = async (what: string, call: () => Promise<unknown>) => {
          for (let i = 0; i < PROBES; i++) if (await served(call())) stale.push(what);
        };
        let bobPassword = "bob-0";
        for (let run = 0; run < RUNS; run++) {
          // A grant on A is there on B at once too (a user it would deny otherwise).
          await c.auth.roleGrantPermission({ name: "tenant", perm: TENANT_PERM }, root);
          const alice = await login(onB, "alice", "alice-0");
          if (!await served(onB.kv.range({ key: b("/t/a") }, alice))) {
            // Refused under the old state; wait for B to catch up so the revoke below means something.
            stale.push("grant not seen");
            await until(() => served(onB.kv.range({ key: b("/t/a") }, alice)));
          }
          await c.auth.roleRevokePermission({
            role: "tenant",
            key: TENANT_PERM.key,
            range_end: TENANT_PERM.range_end,
          }, root);
          await probe("revoked permission", () => onB.kv.range({ key: b("/t/a") }, alice));

          const bob = await login(onB, "bob", bobPassword);
          const next = `bob-${run + 1}`;
          await c.auth.userChangePassword({ name: "bob", password: next }, root);
          await probe(
            "token from before a password change",
            () => onB.kv.range({ key: b("/r/a") }, bob),
          );
          if (await served(login(onB, "bob", bobPassword))) stale.push("old password");
          bobPassword = next;

          await c.auth.userAdd({ name: "carol", password: "carol" }, root);
          await c.auth.userGrantRole({ user: "carol", role: "reader" }, root);
          const carol = await login(onB, "carol", "carol");
          await c.auth.userDelete({ name: "carol" }, root);
          await probe("deleted user", () => onB.kv.range({ key: b("/r/a") }, carol));

          await c.auth.roleAdd({ name: "extra" }, root);
          await c.auth.roleGrantPermission({
            name: "extra",
            perm: { permType: "READ", key: b("/x/"), range_end: b("/x0") },
          }, root);
          await c.auth.userGrantRole({ user: "alice", role: "extra" }, root);
          const alice2 = await login(onB, "alice", "alice-0");
          assert.ok(await served(onB.kv.range({ key: b("/x/a") }, alice2)));
          await c.auth.roleDelete({ role: "extra" }, root);
          await probe("deleted role", () => onB.kv.range({ key: b("/x/a") }, alice2));
        }
        // Auth disabled on A: B serves a caller without a token at once.
        await c.auth.authDisable({}, root);
        if (!await served(onB.kv.range({ key: b("/t/a") }))) stale.push("auth still enabled");
        assert.deepEqual(stale, [], `served under the old state: ${stale.length}`);
      } finally {
        await bk?.close();
        await a.close();
      }
    },
  );
}
