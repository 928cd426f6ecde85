/**
 * `deno run -A bench/round_trips.ts [postgres|mysql|pgbouncer-style]…`: what a
 * commit batch costs on PostgreSQL and MariaDB (the shared servers of the
 * test machine): round trips counted on the wire (bench/rtt_proxy.ts) for
 * kube-apiserver's create, update and delete and for a batch of N, then the
 * time of a batch of N kube updates, on the one-round-trip path and on the
 * general path (a statement at a time under savepoints), medians of a few
 * runs. Not a benchmark of kine: a check of where a batch's time goes.
 *
 * @module
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import { startRttProxy } from "./rtt_proxy.ts";
import type { SqlStore } from "../lib/backend/sql/store.ts";
import { postgresEngine } from "../lib/backend/sql/postgres.ts";
import { mysqlEngine } from "../lib/backend/sql/mysql.ts";
import type { SqlEngine } from "../lib/backend/sql/dialect.ts";
import type { LogStore } from "../lib/backend/logstructured/log.ts";
import { WritePipeline } from "../lib/backend/logstructured/write_pipeline.ts";
import type { Op, Txn } from "../lib/backend/types.ts";
import { deleteOp, kubeTxn as kube, openQuietStore, putOp, silent } from "./kube_txns.ts";

const DB = "kine_round_trips";
const value = new TextEncoder().encode("x".repeat(512));
const put = (key: string): Op => putOp(key, value);

interface Engine {
  name: string;
  engine: SqlEngine;
  server: { host: string; port: number };
  dsn(port: number): string;
  drop(): Promise<void>;
}

const pgDrop = async () => {
  const sql = postgres("postgres://postgres@127.0.0.1:5432/postgres", { onnotice: () => {} });
  await sql.unsafe(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await sql.end();
};
const ENGINES: Engine[] = [
  {
    name: "postgres",
    engine: postgresEngine,
    server: { host: "127.0.0.1", port: 5432 },
    dsn: (port) => `postgres@127.0.0.1:${port}/${DB}?sslmode=disable`,
    drop: pgDrop,
  },
  {
    name: "postgres-unprepared",
    engine: postgresEngine,
    server: { host: "127.0.0.1", port: 5432 },
    dsn: (port) =>
      `postgres@127.0.0.1:${port}/${DB}?sslmode=disable&default_query_exec_mode=simple_protocol`,
    drop: pgDrop,
  },
  {
    name: "mysql",
    engine: mysqlEngine,
    server: { host: "127.0.0.1", port: 3306 },
    dsn: (port) => `root@tcp(127.0.0.1:${port})/${DB}`,
    drop: async () => {
      const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
      await conn.query(`DROP DATABASE IF EXISTS ${DB}`);
      await conn.end();
    },
  },
];

function open(e: Engine, port: number): Promise<SqlStore> {
  return openQuietStore(e.engine, e.dsn(port), 2);
}

/** The store without its one-round-trip batch: every txn on the general path. */
function general(store: SqlStore): LogStore {
  return new Proxy(store, {
    get: (t, p) => {
      if (p === "writeKeyTxns") return undefined;
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Creates `n` keys, then times batches of `n` updates of them: ms per batch. */
async function timeBatches(store: LogStore, prefix: string, n: number): Promise<number> {
  const w = new WritePipeline(store, { logger: silent }, () => {});
  const keys = Array.from({ length: n }, (_, i) => `${prefix}/${i}`);
  let revs = (await Promise.all(keys.map((k) => w.txn(kube(k, 0, put(k)))))).map((r) => r.revision);
  const times: number[] = [];
  for (let run = 0; run < 15; run++) {
    const t0 = performance.now();
    const results = await Promise.all(keys.map((k, i) => w.txn(kube(k, revs[i], put(k)))));
    times.push(performance.now() - t0);
    if (!results.every((r) => r.succeeded)) throw new Error("an update failed");
    revs = results.map((r) => r.revision);
  }
  return median(times);
}

const wanted = Deno.args.length ? Deno.args : ENGINES.map((e) => e.name);
for (const e of ENGINES.filter((e) => wanted.includes(e.name))) {
  await e.drop();
  const proxy = startRttProxy(e.server);
  const store = await open(e, proxy.port);
  const w = new WritePipeline(store, { logger: silent }, () => {});
  const trips = async (txns: Txn[]) => {
    const before = proxy.trips;
    const results = await Promise.all(txns.map((t) => w.txn(t)));
    return { n: proxy.trips - before, results };
  };
  await trips([kube("/warm", 0, put("/warm"))]);
  const create = await trips([kube("/k", 0, put("/k"))]);
  const update = await trips([kube("/k", create.results[0].revision, put("/k"))]);
  const del = await trips([
    kube("/k", update.results[0].revision, deleteOp("/k")),
  ]);
  const batch = await trips(
    Array.from({ length: 32 }, (_, i) => kube(`/b/${i}`, 0, put(`/b/${i}`))),
  );
  await store.close();
  await proxy.close();

  const direct = await open(e, e.server.port);
  const rows: string[] = [];
  for (const n of [1, 32, 128]) {
    const fast = await timeBatches(direct, `/fast${n}`, n);
    const slow = await timeBatches(general(direct), `/slow${n}`, n);
    rows.push(
      `  batch of ${n} updates: ${fast.toFixed(2)} ms (general path ${slow.toFixed(2)} ms)`,
    );
  }
  await direct.close();
  await e.drop();
  console.log(
    `${e.name}: round trips — create ${create.n}, update ${update.n}, delete ${del.n}, ` +
      `batch of 32 creates ${batch.n}`,
  );
  for (const r of rows) console.log(r);
}
