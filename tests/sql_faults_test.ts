/**
 * A database that goes away while kine serves: a private PostgreSQL or
 * MariaDB is stopped hard and started again under a bounded write load. Writes
 * during the outage fail with Unavailable, the pool reconnects by itself,
 * nothing acknowledged is lost, and a watcher sees the table's history, each
 * event once, in order.
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { SQLITE } from "./helpers/backends.ts";
import { startTestKine } from "./helpers/kine.ts";
import { type PrivateDb, privateMariadb, privatePostgres } from "./helpers/private_db.ts";
import { WatchClient } from "./helpers/watch.ts";

const UNAVAILABLE = 14;
const WRITERS = 4;
const LOAD_MS = 7000;
/** No request may wait longer than this, outage or not: a hung write fails the test. */
const PUT_BOUND_MS = 30_000;

/** `p`, or a rejection naming what hung once `ms` have passed. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([p, bound]).finally(() => clearTimeout(timer));
}

for (
  const [name, open] of [
    ["postgres", privatePostgres],
    ["mysql", privateMariadb],
  ] as [string, () => Promise<PrivateDb>][]
) {
  Deno.test(`[${name}] a database restart under load loses no acknowledged write`, async () => {
    const db = await open();
    try {
      const k = await startTestKine({ endpoint: db.endpoint, datastoreRetryTimeout: 5000 }, SQLITE);
      const w = new WatchClient(k.endpoint);
      try {
        const wid = (await w.watch({ key: "/f/", rangeEnd: "/f0" })).watch_id;
        const acked = new Map<string, number>();
        const codes: number[] = [];
        const until = Date.now() + LOAD_MS;
        const writer = async (i: number) => {
          for (let n = 0; Date.now() < until; n++) {
            const key = `/f/${i}/${n}`;
            try {
              const r = await within(
                k.client.kv.put({ key: b(key), value: b(key) }),
                PUT_BOUND_MS,
                `put ${key} unanswered after ${PUT_BOUND_MS} ms`,
              );
              acked.set(key, Number(r.header.revision));
            } catch (err) {
              if (!("code" in (err as object))) throw err;
              codes.push((err as { code: number }).code);
              await new Promise((r) => setTimeout(r, 50));
            }
          }
        };
        const outage = (async () => {
          await new Promise((r) => setTimeout(r, 1500));
          await db.crash();
          await new Promise((r) => setTimeout(r, 1500));
          await db.start();
        })();
        await Promise.all([...Array.from({ length: WRITERS }, (_, i) => writer(i)), outage]);

        assert.ok(codes.length > 0, "no write failed while the database was down");
        assert.deepEqual([...new Set(codes)], [UNAVAILABLE], "failures other than Unavailable");
        const after = [...acked.values()].filter((r) => r > 0).length;
        assert.ok(after > 10, `only ${after} writes acknowledged`);

        // Everything acknowledged is there, with its revision.
        const all = await k.client.kv.range({ key: b("/f/"), range_end: b("/f0") });
        const stored = new Map<string, number>(
          all.kvs.map((kv: any) => [s(kv.key), Number(kv.mod_revision)]),
        );
        for (const [key, rev] of acked) assert.equal(stored.get(key), rev, key);

        // The watcher saw exactly the table's history (every write that committed), in order.
        const expected = [...stored.entries()].sort((x, y) => x[1] - y[1]);
        const deadline = Date.now() + 15_000;
        while (w.events(wid).length < expected.length && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 100));
        }
        await new Promise((r) => setTimeout(r, 300));
        const seen = w.events(wid).map((e: any) => [s(e.kv.key), Number(e.kv.mod_revision)]);
        assert.deepEqual(seen, expected);
        console.log(
          `${name}: ${acked.size} writes acknowledged, ${codes.length} refused during the outage`,
        );
      } finally {
        await w.close();
        await k.close();
      }
    } finally {
      await db.destroy();
    }
  });
}
