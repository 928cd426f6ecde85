/**
 * kine through PgBouncer in transaction pooling, the way hosted PostgreSQL
 * is often fronted: with `default_query_exec_mode=simple_protocol` kine uses
 * no server-side prepared statements and sends its session settings
 * (lock_timeout) as SET LOCAL in each write transaction, since PgBouncer
 * refuses them as startup parameters and may change server connection
 * between transactions.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { databaseName, POSTGRES, SQLITE } from "./helpers/backends.ts";
import { startTestKine } from "./helpers/kine.ts";
import { freePort } from "./helpers/proc.ts";
import { WatchClient } from "./helpers/watch.ts";

async function pgbouncer(dir: string, port: number): Promise<Deno.ChildProcess> {
  Deno.writeTextFileSync(
    `${dir}/pgbouncer.ini`,
    [
      "[databases]",
      "* = host=127.0.0.1 port=5432 user=postgres",
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = any",
      "pool_mode = transaction",
      "default_pool_size = 4",
      `logfile = ${dir}/pgbouncer.log`,
    ].join("\n"),
  );
  await new Deno.Command("chown", { args: ["-R", "postgres", dir] }).output();
  const child = new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", "/usr/sbin/pgbouncer", `${dir}/pgbouncer.ini`],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 100; i++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return child;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  child.kill();
  throw new Error(`pgbouncer did not listen: ${Deno.readTextFileSync(`${dir}/pgbouncer.log`)}`);
}

Deno.test("[postgres] through PgBouncer's transaction pooling with the simple protocol", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-pgbouncer-" });
  const port = freePort();
  const bouncer = await pgbouncer(dir, port);
  try {
    const k = await startTestKine({
      endpoint: `postgres://postgres@127.0.0.1:${port}/${databaseName(dir)}?sslmode=disable` +
        "&default_query_exec_mode=simple_protocol",
    }, SQLITE);
    const w = new WatchClient(k.endpoint);
    try {
      const wid = (await w.watch({ key: "/pb/", rangeEnd: "/pb0", prevKv: true })).watch_id;
      // Concurrent writers share PgBouncer's four server connections between transactions.
      const revs = await Promise.all(
        Array.from(
          { length: 40 },
          (_, i) => k.client.kv.put({ key: b(`/pb/${i % 8}`), value: b(`v${i}`) }),
        ),
      );
      const last = Math.max(...revs.map((r: any) => Number(r.header.revision)));
      const update = await k.client.kv.txn({
        compare: [{ key: b("/pb/0"), target: "MOD", result: "EQUAL", mod_revision: 0 }],
        success: [],
        failure: [{ request_range: { key: b("/pb/0") } }],
      });
      assert.equal(update.succeeded, false);
      const list = await k.client.kv.range({ key: b("/pb/"), range_end: b("/pb0") });
      assert.equal(list.kvs.length, 8);
      assert.equal(Number(list.header.revision), last);
      const events = await w.waitEvents(wid, 40);
      assert.deepEqual(
        events.map((e: any) => Number(e.kv.mod_revision)),
        [...events.map((e: any) => Number(e.kv.mod_revision))].sort((x, y) => x - y),
      );
      await k.client.kv.compact({ revision: last - 5 });
      const now = await k.client.kv.range({ key: b("/pb/7") });
      assert.match(s(now.kvs[0].value), /^v\d+$/);
    } finally {
      await w.close();
      await k.close();
    }
  } finally {
    bouncer.kill();
    await bouncer.status;
    await POSTGRES.cleanup!(dir);
    await Deno.remove(dir, { recursive: true });
  }
});
