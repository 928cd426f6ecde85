/**
 * Direct SQL on a test's own PostgreSQL or MariaDB database, beside kine: to
 * build upstream-written fixtures, inspect rows, and hold ids open.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import { Buffer } from "node:buffer";
import { databaseName, MYSQL, PG_URL, POSTGRES, type TestBackend } from "./backends.ts";

/** One connection to the test database; `?` placeholders on both engines. */
export interface SqlAdmin {
  engine: "postgres" | "mysql";
  exec(sql: string, params?: unknown[]): Promise<void>;
  rows(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

function dollars(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

/** Connects to the database `backend.endpoint(dir)` names, creating it if needed. */
export async function sqlAdmin(backend: TestBackend, dir: string): Promise<SqlAdmin> {
  const db = databaseName(dir);
  if (backend === POSTGRES) {
    const root = postgres(`${PG_URL}/postgres`, { max: 1, onnotice: () => {} });
    const found = await root.unsafe("SELECT 1 FROM pg_database WHERE datname = $1", [db]);
    if (found.length === 0) await root.unsafe(`CREATE DATABASE ${db}`);
    await root.end();
    const sql = postgres(`${PG_URL}/${db}`, { max: 1, onnotice: () => {} });
    return {
      engine: "postgres",
      exec: async (q, p = []) => {
        await sql.unsafe(dollars(q), p as never[]);
      },
      rows: async (q, p = []) => [...await sql.unsafe(dollars(q), p as never[])],
      close: () => sql.end(),
    };
  }
  if (backend !== MYSQL) throw new Error(`no SQL admin for ${backend.name}`);
  const root = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
  await root.query(`CREATE DATABASE IF NOT EXISTS ${db}`);
  await root.end();
  const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: db });
  const values = (p: unknown[]) =>
    p.map((v) => v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v) : v);
  return {
    engine: "mysql",
    exec: async (q, p = []) => {
      await conn.query(q, values(p));
    },
    rows: async (q, p = []) => (await conn.query(q, values(p)))[0] as Record<string, unknown>[],
    close: () => conn.end(),
  };
}
