/**
 * One database round trip as a client in Deno sees it: `SELECT 1` on one
 * connection of the drivers kine uses (postgres.js, mysql2), one after
 * another, from the bench coordinator. The yardstick for what a check that
 * asks the database once (the freshness check of a linearizable read) may add.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import type { Database } from "./databases.ts";
import { Histogram } from "./stats.ts";

/** `mysql://root@tcp(127.0.0.1:3306)/name`, the bench's MySQL endpoint, as mysql2 options. */
function mysqlOptions(endpoint: string) {
  const m = /^mysql:\/\/([^@]+)@tcp\(([^:]+):(\d+)\)\/(\w+)/.exec(endpoint);
  if (!m) throw new Error(`unexpected MySQL endpoint ${endpoint}`);
  return { user: m[1], host: m[2], port: Number(m[3]), database: m[4] };
}

/** Latencies of `count` `SELECT 1`s on database `name`; undefined for NATS. */
export async function databaseRoundTrips(
  db: Database,
  name: string,
  count = 200,
): Promise<Histogram | undefined> {
  const h = new Histogram();
  const timed = async (query: () => Promise<unknown>) => {
    await query(); // the connection is opened by the first
    for (let i = 0; i < count; i++) {
      const t0 = performance.now();
      await query();
      h.add(performance.now() - t0);
    }
  };
  if (db.engine === "postgres") {
    const sql = postgres(db.endpoint(name), { max: 1, onnotice: () => {} });
    try {
      await timed(() => sql`SELECT 1`);
    } finally {
      await sql.end();
    }
    return h;
  }
  if (db.engine === "mysql") {
    const conn = await mysql.createConnection(mysqlOptions(db.endpoint(name)));
    try {
      await timed(() => conn.query("SELECT 1"));
    } finally {
      await conn.end();
    }
    return h;
  }
  return undefined;
}
