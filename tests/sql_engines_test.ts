/**
 * What is particular to PostgreSQL and MariaDB behind the shared SQL core:
 * upstream's schema, databases written by upstream kine, keys an engine
 * cannot store, DSN forms, --table-name, an unreachable server at start-up,
 * and revision gaps (spec §13 #35, #46).
 */
import assert from "node:assert/strict";
import { b, s } from "./helpers/client.ts";
import { MYSQL, POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { startTestKine, type TestKine, withKine } from "./helpers/kine.ts";
import { type SqlAdmin, sqlAdmin } from "./helpers/sql_admin.ts";
import { key, WatchClient } from "./helpers/watch.ts";
import { parsePostgresDsn } from "../lib/backend/sql/postgres.ts";
import { parseMysqlDsn } from "../lib/backend/sql/mysql.ts";
import { type KineConfig, startKine } from "../lib/mod.ts";
import { createLogger } from "../lib/log/mod.ts";

const INVALID_ARGUMENT = 3;
const OUT_OF_RANGE = 11;
const ENGINES = [POSTGRES, MYSQL];
const NO_TLS = { caFile: "", certFile: "", keyFile: "", skipVerify: false };

/** Upstream kine's DDL, exactly (spec §3.1): INTEGER lease, no version column. */
const UPSTREAM_DDL: Record<string, string[]> = {
  postgres: [
    `CREATE TABLE IF NOT EXISTS kine (id BIGSERIAL PRIMARY KEY, name text COLLATE "C",
      created INTEGER, deleted INTEGER, create_revision BIGINT, prev_revision BIGINT,
      lease INTEGER, value bytea, old_value bytea)`,
    "CREATE INDEX IF NOT EXISTS kine_name_index ON kine (name)",
    "CREATE INDEX IF NOT EXISTS kine_name_id_index ON kine (name,id)",
    "CREATE INDEX IF NOT EXISTS kine_id_deleted_index ON kine (id,deleted)",
    "CREATE INDEX IF NOT EXISTS kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX IF NOT EXISTS kine_name_prev_revision_uindex ON kine (name, prev_revision)",
    "CREATE INDEX IF NOT EXISTS kine_list_query_index on kine(name, id DESC, deleted)",
  ],
  mysql: [
    `CREATE TABLE IF NOT EXISTS kine (id BIGINT UNSIGNED AUTO_INCREMENT,
      name VARCHAR(630) CHARACTER SET ascii, created INTEGER, deleted INTEGER,
      create_revision BIGINT UNSIGNED, prev_revision BIGINT UNSIGNED, lease INTEGER,
      value MEDIUMBLOB, old_value MEDIUMBLOB, PRIMARY KEY (id))`,
    "CREATE INDEX kine_name_index ON kine (name)",
    "CREATE INDEX kine_name_id_index ON kine (name,id)",
    "CREATE INDEX kine_id_deleted_index ON kine (id,deleted)",
    "CREATE INDEX kine_prev_revision_index ON kine (prev_revision)",
    "CREATE UNIQUE INDEX kine_name_prev_revision_uindex ON kine (name, prev_revision)",
  ],
};

const INDEXES = [
  "kine_id_deleted_index",
  "kine_name_id_index",
  "kine_name_index",
  "kine_name_prev_revision_uindex",
  "kine_prev_revision_index",
];

/** The columns upstream reads and the one it ignores, as `name:type` (lower case). */
async function columns(admin: SqlAdmin, table = "kine"): Promise<string[]> {
  const rows = admin.engine === "postgres"
    ? await admin.rows(
      "SELECT column_name AS c, data_type AS t FROM information_schema.columns " +
        "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
      [table],
    )
    : await admin.rows(
      "SELECT column_name AS c, column_type AS t FROM information_schema.COLUMNS " +
        "WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
      [table],
    );
  return rows.map((r) => `${r.c}:${String(r.t).toLowerCase()}`);
}

async function indexes(admin: SqlAdmin, table = "kine"): Promise<string[]> {
  const rows = admin.engine === "postgres"
    ? await admin.rows("SELECT indexname AS i FROM pg_indexes WHERE tablename = ?", [table])
    : await admin.rows(
      "SELECT DISTINCT index_name AS i FROM information_schema.STATISTICS " +
        "WHERE table_schema = DATABASE() AND table_name = ?",
      [table],
    );
  return rows.map((r) => String(r.i)).filter((i) => !/pkey|PRIMARY/.test(i)).sort();
}

/** A test per engine with kine on its fresh database and a direct connection beside it. */
function perEngine(
  name: string,
  fn: (k: TestKine, admin: SqlAdmin, engine: TestBackend) => Promise<void>,
  engines = ENGINES,
  config: Partial<KineConfig> = {},
) {
  for (const engine of engines) {
    Deno.test(`[${engine.name}] ${name}`, () =>
      withKine(
        async (k) => {
          const admin = await sqlAdmin(engine, k.dir);
          try {
            await fn(k, admin, engine);
          } finally {
            await admin.close();
          }
        },
        config,
        engine,
      ));
  }
}

async function rejects(p: Promise<unknown>, code: number): Promise<string> {
  let details = "";
  await assert.rejects(p, (err: any) => {
    assert.equal(err.code, code, err.details);
    details = err.details;
    return true;
  });
  return details;
}

const put = async (k: TestKine, key: string, value: string): Promise<number> =>
  Number((await k.client.kv.put({ key: b(key), value: b(value) })).header.revision);

perEngine(
  "schema: upstream's columns and indexes, plus version and a 64-bit lease",
  async (k, admin) => {
    const cols = await columns(admin);
    const expected = admin.engine === "postgres"
      ? [
        "id:bigint",
        "name:text",
        "created:integer",
        "deleted:integer",
        "create_revision:bigint",
        "prev_revision:bigint",
        "lease:bigint",
        "value:bytea",
        "old_value:bytea",
        "version:bigint",
      ]
      : [
        "id:bigint(20) unsigned",
        "name:varchar(630)",
        "created:int(11)",
        "deleted:int(11)",
        "create_revision:bigint(20) unsigned",
        "prev_revision:bigint(20) unsigned",
        "lease:bigint(20)",
        "value:mediumblob",
        "old_value:mediumblob",
        "version:bigint(20)",
      ];
    assert.deepEqual(cols, expected);
    const want = admin.engine === "postgres"
      ? [...INDEXES, "kine_list_query_index"].sort()
      : INDEXES;
    assert.deepEqual(await indexes(admin), want);
    // kine reads back the row it wrote, through its own schema.
    const rev = await put(k, "/schema", "v");
    const [row] = await admin.rows("SELECT name, created, version FROM kine WHERE id = ?", [rev]);
    assert.deepEqual([row.name, Number(row.created), Number(row.version)], ["/schema", 1, 1]);
  },
);

for (const engine of ENGINES) {
  Deno.test(`[${engine.name}] drop-in on a database written by upstream kine`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "kine-dropin-" });
    const admin = await sqlAdmin(engine, dir);
    try {
      for (const stmt of UPSTREAM_DDL[admin.engine]) await admin.exec(stmt);
      const H = '{"health":"true"}';
      // History after an upstream compaction at 6; /d carries an upstream TTL lease (30 s).
      const rows: [number, string, Record<string, number | string | null>][] = [
        [1, "compact_rev_key", { created: 1, prev_revision: 6, value: "" }],
        [2, "/registry/health", { created: 1, value: H }],
        [4, "/b", { created: 1, value: "b1" }],
        [5, "/a", { create_revision: 3, prev_revision: 3, value: "a2", old_value: "a1" }],
        [6, "/c", { created: 1, value: "c1" }],
        [7, "/c", { deleted: 1, prev_revision: 6, old_value: "c1" }],
        [8, "gap-8", { deleted: 1 }],
        [9, "/b", { create_revision: 4, prev_revision: 4, value: "b2", old_value: "b1" }],
        [10, "/d", { created: 1, lease: 30, value: "d1" }],
      ];
      for (const [id, name, o] of rows) {
        const bytes = (v: unknown) => typeof v === "string" ? b(v) : null;
        await admin.exec(
          "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease, " +
            "value, old_value) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
          [
            id,
            name,
            o.created ?? 0,
            o.deleted ?? 0,
            o.create_revision ?? 0,
            o.prev_revision ?? 0,
            o.lease ?? 0,
            bytes(o.value),
            bytes(o.old_value),
          ],
        );
      }
      if (admin.engine === "postgres") await admin.exec("SELECT setval('kine_id_seq', 10)");
      const k = await startTestKine({ endpoint: engine.endpoint(dir) }, SQLITE);
      try {
        const all = await k.client.kv.range({ key: b("/"), range_end: b("0") });
        assert.equal(Number(all.header.revision), 10);
        assert.deepEqual(
          all.kvs.map((kv: any) => [
            s(kv.key),
            s(kv.value),
            Number(kv.create_revision),
            Number(kv.mod_revision),
            Number(kv.version),
            Number(kv.lease),
          ]),
          [
            // /a's create row went in the compaction: its version is counted from what is left.
            ["/a", "a2", 3, 5, 1, 0],
            ["/b", "b2", 4, 9, 2, 0],
            ["/d", "d1", 10, 10, 1, 30],
            ["/registry/health", H, 2, 2, 1, 0],
          ],
        );
        assert.equal((await k.client.kv.range({ key: b("gap-8") })).kvs.length, 0);
        const a6 = await k.client.kv.range({ key: b("/a"), revision: 6 });
        assert.equal(s(a6.kvs[0].value), "a2");
        await rejects(k.client.kv.range({ key: b("/a"), revision: 5 }), OUT_OF_RANGE);
        // kine's rows chain to upstream's exactly as upstream writes them (spec §3.2).
        const u = await k.client.kv.txn({
          compare: [{ key: b("/b"), target: "MOD", result: "EQUAL", mod_revision: 9 }],
          success: [{ request_put: { key: b("/b"), value: b("b3") } }],
          failure: [],
        });
        assert.equal(u.succeeded, true);
        const c = await put(k, "/c", "c2");
        const [ub] = await admin.rows("SELECT * FROM kine WHERE id = ?", [
          Number(u.header.revision),
        ]);
        const [uc] = await admin.rows("SELECT * FROM kine WHERE id = ?", [c]);
        const shape = (r: Record<string, unknown>) => [
          r.name,
          Number(r.created),
          Number(r.deleted),
          Number(r.create_revision),
          Number(r.prev_revision),
          s(r.value as Uint8Array),
          s(r.old_value as Uint8Array),
          Number(r.version),
        ];
        assert.deepEqual(shape(ub), ["/b", 0, 0, 4, 9, "b3", "b2", 3]);
        assert.deepEqual(shape(uc), ["/c", 1, 0, 0, 7, "c2", "", 1]);
        assert.ok((await columns(admin)).includes(
          admin.engine === "postgres" ? "lease:bigint" : "lease:bigint(20)",
        ));
      } finally {
        await k.close();
      }
    } finally {
      await admin.close();
      await engine.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true });
    }
  });
}

perEngine("keys PostgreSQL cannot store (NUL) are refused with InvalidArgument", async (k) => {
  await rejects(k.client.kv.put({ key: b("/nul\0x"), value: b("v") }), INVALID_ARGUMENT);
  const r = await k.client.kv.range({ key: b("/nul"), range_end: b("/num") });
  assert.equal(r.kvs.length, 0);
}, [POSTGRES]);

perEngine(
  "keys the ascii column cannot hold are refused; non-ASCII bounds still select",
  async (k) => {
    const details = await rejects(
      k.client.kv.put({ key: b("/k/\u00e9"), value: b("v") }),
      INVALID_ARGUMENT,
    );
    assert.match(details, /ASCII/);
    await rejects(
      k.client.kv.put({ key: b("/" + "x".repeat(630)), value: b("v") }),
      INVALID_ARGUMENT,
    );
    await put(k, "/k/a", "1");
    await put(k, "/k/~", "2");
    await put(k, "/l", "3");
    // etcdctl's prefix end for "/k/\u00ff" is not ASCII: every ASCII key after "/k/" is below it.
    const r = await k.client.kv.range({ key: b("/k/"), range_end: b("/k/\u00ff") });
    assert.deepEqual(r.kvs.map((kv: any) => s(kv.key)), ["/k/a", "/k/~"]);
    const from = await k.client.kv.range({ key: b("/k/\u00e9"), range_end: b("\0") });
    assert.deepEqual(from.kvs.map((kv: any) => s(kv.key)), ["/l", "/registry/health"]);
  },
  [MYSQL],
);

Deno.test("postgres DSN: upstream's defaults, TLS folding, lock_timeout, simple protocol", () => {
  const d = parsePostgresDsn("", NO_TLS);
  assert.deepEqual([d.host, d.port, d.user, d.password, d.database], [
    "localhost",
    5432,
    "postgres",
    "postgres",
    "kubernetes",
  ]);
  assert.equal(d.connection.lock_timeout, "10000");
  assert.equal(d.prepare, true);
  assert.equal(d.display, "postgres://postgres:***@localhost/kubernetes");
  const t = parsePostgresDsn("u:p%40ss@db.example:6432/MyDB?lock_timeout=500&search_path=k", {
    ...NO_TLS,
    skipVerify: true,
  });
  assert.deepEqual([t.user, t.password, t.database, t.port], ["u", "p@ss", "mydb", 6432]);
  assert.equal(t.connection.lock_timeout, "500");
  assert.equal(t.connection.search_path, "k");
  assert.equal(t.ssl, "prefer");
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeTextFileSync(`${dir}/ca.pem`, "CA");
    const v = parsePostgresDsn("h/db", { ...NO_TLS, caFile: `${dir}/ca.pem` });
    assert.deepEqual(v.ssl, { ca: "CA", rejectUnauthorized: true });
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
  assert.equal(parsePostgresDsn("h/db?sslmode=disable", NO_TLS).ssl, false);
  for (const q of ["default_query_exec_mode=simple_protocol", "statement_cache_capacity=0"]) {
    const p = parsePostgresDsn(`h/db?${q}`, NO_TLS);
    assert.equal(p.prepare, false, q);
    assert.equal(Object.keys(p.connection).some((c) => q.startsWith(c)), false, q);
  }
});

Deno.test("mysql DSN: go-sql-driver forms and upstream's defaults", () => {
  const d = parseMysqlDsn("", NO_TLS);
  assert.deepEqual([d.user, d.socketPath, d.database], [
    "root",
    "/var/run/mysqld/mysqld.sock",
    "kubernetes",
  ]);
  const t = parseMysqlDsn("kine:s3cr@t@tcp(10.0.0.5:3307)/k3s?timeout=5s&parseTime=true", NO_TLS);
  assert.deepEqual([t.user, t.password, t.host, t.port, t.database, t.connectTimeout], [
    "kine",
    "s3cr@t",
    "10.0.0.5",
    3307,
    "k3s",
    5000,
  ]);
  assert.equal(t.display, "kine:***@tcp(10.0.0.5:3307)/k3s");
  assert.equal(t.ssl, undefined);
  assert.deepEqual(parseMysqlDsn("u@tcp(h)/?tls=skip-verify", NO_TLS).ssl, {
    rejectUnauthorized: false,
  });
  assert.equal(parseMysqlDsn("u@tcp(h)/", NO_TLS).port, 3306);
  assert.throws(() => parseMysqlDsn("u@tcp(h:1", NO_TLS), /failed to create driver/);
});

for (const engine of [SQLITE, ...ENGINES]) {
  Deno.test(`[${engine.name}] --table-name keeps two clusters apart in one database`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "kine-tables-" });
    const endpoint = engine.endpoint(dir);
    const one = await startTestKine({ endpoint, tableName: "cluster_one" }, SQLITE);
    const two = await startTestKine({ endpoint, tableName: "cluster_two" }, SQLITE);
    try {
      await put(one, "/only/one", "1");
      await put(two, "/only/two", "2");
      await put(two, "/only/two", "3");
      const list = async (k: TestKine) =>
        (await k.client.kv.range({ key: b("/only/"), range_end: b("/only0") })).kvs.map((
          kv: any,
        ) => `${s(kv.key)}=${s(kv.value)}`);
      assert.deepEqual(await list(one), ["/only/one=1"]);
      assert.deepEqual(await list(two), ["/only/two=3"]);
      await assert.rejects(
        startKine({ endpoint, tableName: "Bad-Name", listenAddress: "127.0.0.1:0" }),
        /invalid table name/,
      );
    } finally {
      await one.close();
      await two.close();
      await engine.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  });
}

for (
  const [name, endpoint, shown] of [
    ["postgres", "postgres://kine:hunter2@127.0.0.1:1/x", "postgres://kine:***@127.0.0.1:1/x"],
    ["mysql", "mysql://kine:hunter2@tcp(127.0.0.1:1)/x", "kine:***@tcp(127.0.0.1:1)/x"],
  ]
) {
  Deno.test(`[${name}] an unreachable database: a line per retry, then one error, no password`, async () => {
    const lines: string[] = [];
    const sink = {
      writeSync: (b: Uint8Array) => (lines.push(new TextDecoder().decode(b)), b.length),
    };
    const logger = createLogger({ stdout: sink, stderr: sink });
    const started = performance.now();
    const err = await startKine({
      endpoint,
      listenAddress: "127.0.0.1:0",
      metricsBindAddress: "0",
      datastoreRetryTimeout: 2500,
    }, logger).then(() => undefined, (e) => e as Error);
    assert.ok(err, "start-up succeeded against a closed port");
    assert.ok(err.message.startsWith(`failed to connect to datastore ${shown}: `), err.message);
    assert.ok(performance.now() - started >= 1500, "gave up without retrying");
    const retries = lines.filter((l) => l.includes("datastore not reachable, retrying"));
    assert.ok(retries.length >= 1, lines.join(""));
    assert.ok(![err.message, ...lines].some((l) => l.includes("hunter2")), "password shown");
  });
}

/** `kine_gap_fill_total{result}` of the server. */
async function gapFills(k: TestKine, result: string): Promise<number> {
  const text = await (await fetch(k.kine.metricsUrl!)).text();
  const m = new RegExp(`^kine_gap_fill_total\\{result="${result}"\\} (\\S+)$`, "m").exec(text);
  return Number(m?.[1]);
}

perEngine(
  "an id consumed by a rolled-back insert is filled; watchers never see the gap",
  async (k, admin) => {
    const w = new WatchClient(k.endpoint);
    try {
      const id = (await w.watch({ key: "/gap/", rangeEnd: "/gap0" })).watch_id;
      await admin.exec(admin.engine === "postgres" ? "BEGIN" : "START TRANSACTION");
      await admin.exec(
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease) " +
          "VALUES('/gap/rolled-back', 1, 0, 0, 0, 0)",
      );
      await admin.exec("ROLLBACK");
      const after = await put(k, "/gap/after", "v");
      const events = await w.waitEvents(id, 1);
      assert.deepEqual(events.map(key), ["/gap/after"]);
      const [hole] = await admin.rows("SELECT name FROM kine WHERE id = ?", [after - 1]);
      assert.equal(hole?.name, `gap-${after - 1}`, "the consumed id was not filled");
      assert.equal(await gapFills(k, "filled"), 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(w.events(id).length, 1, "a gap row was shown");
    } finally {
      await w.close();
    }
  },
  ENGINES,
  { metricsBindAddress: "127.0.0.1:0" },
);

perEngine(
  "an id held by an open transaction: its row is delivered once, in order, when it commits",
  async (k, admin) => {
    const early = new WatchClient(k.endpoint);
    const late = new WatchClient(k.endpoint);
    try {
      const start = await put(k, "/held/first", "1");
      const e = (await early.watch({ key: "/held/", rangeEnd: "/held0" })).watch_id;
      await admin.exec(admin.engine === "postgres" ? "BEGIN" : "START TRANSACTION");
      await admin.exec(
        "INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, " +
          "version) VALUES('/held/slow', 1, 0, 0, 0, 0, ?, 1)",
        [b("slow")],
      );
      const mine = await put(k, "/held/fast", "2");
      // A watch created while the lower id is still uncommitted, from before it.
      const l = (await late.watch({ key: "/held/", rangeEnd: "/held0", startRevision: start }))
        .watch_id;
      await new Promise((r) => setTimeout(r, 200));
      if (admin.engine === "postgres") {
        // The fill found the id held and gave up at once, filling nothing, rather than wait.
        assert.ok(await gapFills(k, "held") > 0, "no fill met the held id");
      } else {
        // MySQL's read of the missing id waits for its transaction: no fill is tried at all.
        assert.equal(
          await gapFills(k, "held") + await gapFills(k, "filled"),
          0,
          "a fill was tried",
        );
      }
      assert.equal(early.events(e).length, 0, "an event passed the uncommitted id");
      await admin.exec("COMMIT");
      const want = ["/held/slow", "/held/fast"];
      assert.deepEqual((await early.waitEvents(e, 2)).map(key), want);
      assert.deepEqual((await late.waitEvents(l, 3)).map(key), ["/held/first", ...want]);
      const slow = early.events(e)[0];
      assert.equal(Number(slow.kv.mod_revision), mine - 1);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(early.events(e).length, 2, "an event came twice");
      assert.equal(late.events(l).length, 3, "an event came twice");
      assert.equal(await gapFills(k, "filled"), 0);
    } finally {
      await early.close();
      await late.close();
    }
  },
  ENGINES,
  { metricsBindAddress: "127.0.0.1:0" },
);

perEngine(
  "an insert that loses its id to a gap fill (kine_pkey) is retried with the next id",
  async (k, admin) => {
    await put(k, "/race/before", "v");
    // A fill that got to the next id first, as another process's poll loop may.
    const [{ n }] = await admin.rows("SELECT last_value + 1 AS n FROM kine_id_seq");
    await admin.exec(
      "INSERT INTO kine(id, name, created, deleted, create_revision, prev_revision, lease) " +
        "VALUES(?, ?, 0, 1, 0, 0, 0)",
      [Number(n), `gap-${n}`],
    );
    const rev = await put(k, "/race/after", "v");
    assert.equal(rev, Number(n) + 1);
    const got = await k.client.kv.range({ key: b("/race/after") });
    assert.equal(Number(got.kvs[0].mod_revision), rev);
  },
  [POSTGRES],
);
