// Shared by the SQLite storage tests: kine in process or as a daemon on a file, the file
// read directly with node:sqlite, and small gRPC helpers.

import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { type Kine, type KineConfig, startKine } from "../../lib/mod.ts";
import { type Logger, silentLogger } from "../../lib/log/mod.ts";
import { b, connect, type EtcdClient, s } from "./client.ts";

export const ROOT = new URL("../..", import.meta.url).pathname;
export const MAIN = `${ROOT}main.ts`;

export const ERR_COMPACTED = "etcdserver: mvcc: required revision has been compacted";
export const ERR_FUTURE = "etcdserver: mvcc: required revision is a future revision";
export const OUT_OF_RANGE = 11;
export const UNAVAILABLE = 14;
export const RESOURCE_EXHAUSTED = 8;

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** upstream kine's SQLite DDL (pkg/drivers/sqlite), as spec §3.1 lists it. */
export const UPSTREAM_DDL = [
  `CREATE TABLE IF NOT EXISTS kine
    (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      name TEXT,
      created INTEGER,
      deleted INTEGER,
      create_revision INTEGER,
      prev_revision INTEGER,
      lease INTEGER,
      value BLOB,
      old_value BLOB
    )`,
  "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)",
  "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)",
  "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)",
  "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)",
  "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
  "CREATE INDEX IF NOT EXISTS kine_id_compact_rev_key_with_prev_revision_index ON kine(id, name, " +
  "prev_revision) WHERE name != 'compact_rev_key' AND prev_revision != 0",
];

// ---------------------------------------------------------------------------
// helpers

export interface Server {
  kine: Kine;
  client: EtcdClient;
  close(): Promise<void>;
}

/** kine in-process on `path`, with DSN `params` and config overrides. */
export async function serve(
  path: string,
  params = "",
  config: Partial<KineConfig> = {},
  logger: Logger = silentLogger,
): Promise<Server> {
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    endpoint: `sqlite://${path}${params ? `?${params}` : ""}`,
    metricsBindAddress: "0",
    compactMinRetain: 0,
    compactBatchSize: 100,
    ...config,
  }, logger);
  const client = connect(kine.url.replace(/^https?:\/\//, ""));
  return {
    kine,
    client,
    async close() {
      client.close();
      await kine.close();
    },
  };
}

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kine-sqlite-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs `fn` against kine on `path`; the server is always closed. */
export async function withServer(
  path: string,
  fn: (srv: Server) => Promise<void>,
  params = "",
  config: Partial<KineConfig> = {},
  logger: Logger = silentLogger,
): Promise<void> {
  const srv = await serve(path, params, config, logger);
  try {
    await fn(srv);
  } finally {
    await srv.close();
  }
}

/** Runs a query on its own read-only connection to `path`. */
export function query(path: string, sql: string, ...params: (string | number)[]) {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

export interface Row {
  id: number;
  name: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  lease: number;
  value: string | null;
  old_value: string | null;
}

export const text = (v: unknown): string | null => v === null ? null : dec.decode(v as Uint8Array);

/** Every row of the `kine` table, values decoded as UTF-8. */
export function kineRows(path: string, where = ""): Row[] {
  return query(path, `SELECT * FROM kine ${where} ORDER BY id`).map((r) => ({
    id: Number(r.id),
    name: r.name as string,
    created: Number(r.created),
    deleted: Number(r.deleted),
    create_revision: Number(r.create_revision),
    prev_revision: Number(r.prev_revision),
    lease: Number(r.lease),
    value: text(r.value),
    old_value: text(r.old_value),
  }));
}

export function rowById(path: string, id: number): Row {
  const [row] = kineRows(path, `WHERE id = ${Number(id)}`);
  assert.ok(row, `row ${id} is missing`);
  return row;
}

/** A row as spec §3.2 describes it, for writing a database by hand. */
export function row(
  id: number,
  name: string,
  o: Partial<Omit<Row, "id" | "name">> = {},
): Row {
  return {
    id,
    name,
    created: o.created ?? 0,
    deleted: o.deleted ?? 0,
    create_revision: o.create_revision ?? 0,
    prev_revision: o.prev_revision ?? 0,
    lease: o.lease ?? 0,
    value: o.value === undefined ? null : o.value,
    old_value: o.old_value === undefined ? null : o.old_value,
  };
}

/** Creates `path` with upstream's DDL and the given rows (explicit ids). */
export function buildUpstreamDb(path: string, rows: Row[]): void {
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    for (const stmt of UPSTREAM_DDL) db.exec(stmt);
    const insert = db.prepare(
      "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, " +
        "value, old_value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    const blob = (v: string | null) => (v === null ? null : enc.encode(v));
    for (const r of rows) {
      insert.run(
        r.id,
        r.name,
        r.created,
        r.deleted,
        r.create_revision,
        r.prev_revision,
        r.lease,
        blob(r.value),
        blob(r.old_value),
      );
    }
  } finally {
    db.close();
  }
}

/** The gRPC error of a call that must fail. */
export async function rpcError(call: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await call;
  } catch (err) {
    const e = err as { code: number; details: string };
    return { code: e.code, details: e.details };
  }
  return assert.fail("expected the call to fail");
}

export async function put(c: EtcdClient, key: string, value: string, lease = 0): Promise<number> {
  const r = await c.kv.put({ key: b(key), value: b(value), lease });
  return Number(r.header.revision);
}

/** kube-apiserver's create: `If(mod(key) == 0) Then(Put)`. */
export function createTxn(key: string, value: string, lease = 0) {
  return {
    compare: [{ key: b(key), target: "MOD", result: "EQUAL", mod_revision: 0 }],
    success: [{ request_put: { key: b(key), value: b(value), lease } }],
    failure: [],
  };
}

/** kube-apiserver's update: `If(mod(key) == rev) Then(Put) Else(Get)`. */
export function updateTxn(key: string, rev: number, value: string, lease = 0) {
  return {
    compare: [{ key: b(key), target: "MOD", result: "EQUAL", mod_revision: rev }],
    success: [{ request_put: { key: b(key), value: b(value), lease } }],
    failure: [{ request_range: { key: b(key) } }],
  };
}

/** kube-apiserver's delete: `If(mod(key) == rev) Then(Delete) Else(Get)`. */
export function deleteTxn(key: string, rev: number) {
  return {
    compare: [{ key: b(key), target: "MOD", result: "EQUAL", mod_revision: rev }],
    success: [{ request_delete_range: { key: b(key), prev_kv: true } }],
    failure: [{ request_range: { key: b(key) } }],
  };
}

export interface Kv {
  key: string;
  value: string;
  create: number;
  mod: number;
  lease: number;
}

export function kvs(res: any): Kv[] {
  return res.kvs.map((kv: any) => ({
    key: s(kv.key),
    value: s(kv.value),
    create: Number(kv.create_revision),
    mod: Number(kv.mod_revision),
    lease: Number(kv.lease),
  }));
}

/** `etcdctl get --prefix ""`: key "\0", range_end "\0". */
export async function all(c: EtcdClient, revision = 0) {
  return await c.kv.range({ key: b("\0"), range_end: b("\0"), revision });
}

/** Keys and values of every live key, at `revision` (0 = latest). */
export async function snapshot(c: EtcdClient, revision = 0): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const kv of kvs(await all(c, revision))) out[kv.key] = kv.value;
  return out;
}

export async function header(c: EtcdClient): Promise<number> {
  const r = await c.kv.range({ key: b("/no/such/key") });
  return Number(r.header.revision);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * A connection the SQLite driver opened with the DSN's settings (white box:
 * the first DatabaseSync reachable through the backend's public fields).
 */
export function readerDb(kine: Kine): DatabaseSync {
  const seen = new Set<unknown>();
  const find = (o: unknown, depth: number): DatabaseSync | undefined => {
    if (o instanceof DatabaseSync) return o;
    if (depth === 0 || o === null || typeof o !== "object" || seen.has(o)) return undefined;
    seen.add(o);
    for (const key of Object.keys(o)) {
      const hit = find((o as Record<string, unknown>)[key], depth - 1);
      if (hit) return hit;
    }
    return undefined;
  };
  const db = find(kine.backend, 5);
  assert.ok(db, "cannot reach the SQLite driver's connection");
  return db;
}

export function pragma(db: DatabaseSync, name: string): unknown {
  const r = db.prepare(`PRAGMA ${name}`).get() as Record<string, unknown>;
  return Object.values(r)[0];
}

/** UTF-8 byte order, as etcd sorts keys. */
export function byteOrder(a: string, b2: string): number {
  const x = enc.encode(a);
  const y = enc.encode(b2);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] - y[i];
  }
  return x.length - y.length;
}
