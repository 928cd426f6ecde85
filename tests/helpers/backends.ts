/**
 * The backends every conformance test runs against. A new backend is one
 * entry here: its name and the endpoint for a fresh, empty store named after
 * the test's temporary `dir`, and how to throw that store away.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import { bucketFor, deleteBucket, SHARED_NATS } from "./nats.ts";

export interface TestBackend {
  name: string;
  endpoint(dir: string): string;
  /** Drops what `endpoint(dir)` created. */
  cleanup?(dir: string): Promise<void>;
  /** A store that outlives the kine process (a restart keeps the data). */
  persistent: boolean;
  /** False where a txn may compare and write one key only (NATS). */
  multiKeyTxn?: boolean;
  /**
   * True where `KV.Compact` records the compact revision as a write of its
   * own, which takes a revision no watcher sees (NATS).
   */
  compactionWrites?: boolean;
}

/** A database name unique to the test's temporary directory. */
export function databaseName(dir: string): string {
  return "kt_" + dir.replace(/.*\//, "").replace(/[^a-z0-9]/gi, "_").toLowerCase();
}

export const PG_URL = "postgres://postgres@127.0.0.1:5432";
export const MYSQL_ADDR = "root@tcp(127.0.0.1:3306)";

export const POSTGRES: TestBackend = {
  name: "postgres",
  endpoint: (dir) => `${PG_URL}/${databaseName(dir)}?sslmode=disable`,
  cleanup: async (dir) => {
    const sql = postgres(`${PG_URL}/postgres`, { max: 1, onnotice: () => {} });
    try {
      await sql.unsafe(`DROP DATABASE IF EXISTS ${databaseName(dir)} WITH (FORCE)`);
    } finally {
      await sql.end();
    }
  },
  persistent: true,
};

export const MYSQL: TestBackend = {
  name: "mysql",
  endpoint: (dir) => `mysql://${MYSQL_ADDR}/${databaseName(dir)}`,
  cleanup: async (dir) => {
    const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
    try {
      await conn.query(`DROP DATABASE IF EXISTS ${databaseName(dir)}`);
    } finally {
      await conn.end();
    }
  },
  persistent: true,
};

export const SQLITE: TestBackend = {
  name: "sqlite",
  endpoint: (dir) => `sqlite://${dir}/state.db`,
  persistent: true,
};

export const NATS: TestBackend = {
  name: "nats",
  // 64 messages per key (the most), so the suite's update bursts stay readable;
  // tests/nats_test.ts covers what a smaller history means.
  endpoint: (dir) => `nats://${SHARED_NATS}?bucket=${bucketFor(dir)}&revHistory=64`,
  cleanup: (dir) => deleteBucket(bucketFor(dir)),
  persistent: true,
  multiKeyTxn: false,
  compactionWrites: true,
};

export const BACKENDS: TestBackend[] = [
  SQLITE,
  { name: "memory", endpoint: () => "memory://", persistent: false },
  POSTGRES,
  MYSQL,
  NATS,
];
