/**
 * PostgreSQL's commit announcements between kine servers: a write
 * transaction never NOTIFYs itself (a transaction that notified commits
 * holding one lock for the whole cluster across its WAL flush, so the
 * servers' commits would queue behind each other); the one-round-trip batch
 * has the server send it right after the batch's COMMIT, in the same
 * message, tagged with the process that sent it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresEngine } from "../lib/backend/sql/postgres.ts";
import type { SqlOptions } from "../lib/backend/sql/dialect.ts";
import { silentLogger } from "../lib/log/mod.ts";
import { databaseName, PG_URL, POSTGRES } from "./helpers/backends.ts";

const OPTIONS: SqlOptions = {
  tls: { caFile: "", certFile: "", keyFile: "", skipVerify: false },
  pool: { maxIdle: 2, maxOpen: 4, maxLifetime: 0, maxIdleTime: 0 },
  slowSqlThreshold: 0,
  slowSqlWarningThreshold: 0,
  tableName: "kine",
  retryTimeout: 5000,
  identityProvider: "",
  logger: silentLogger,
};

/** Resolves once `heard` has `n` payloads, or after `ms`. */
async function heardAt(heard: string[], n: number, ms: number): Promise<void> {
  for (const end = performance.now() + ms; heard.length < n && performance.now() < end;) {
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A kine driver on a fresh database with a `kine` table, and a LISTEN on its channel. */
async function withDriver(
  fn: (
    driver: Awaited<ReturnType<typeof postgresEngine.connect>>,
    other: postgres.Sql,
    heard: string[],
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kine-ha-notify-" });
  // The engine takes the DSN without its scheme, as the endpoint parser hands it on.
  const dsn = POSTGRES.endpoint(dir).replace(/^postgres:\/\//, "");
  const driver = await postgresEngine.connect(dsn, OPTIONS);
  const other = postgres(`${PG_URL}/${databaseName(dir)}`, { max: 2, onnotice: () => {} });
  const heard: string[] = [];
  try {
    await other.unsafe("CREATE TABLE kine (id BIGSERIAL PRIMARY KEY, name TEXT)");
    await other.listen("kine", (payload) => heard.push(payload));
    await fn(driver, other, heard);
  } finally {
    await other.end();
    await driver.close();
    await POSTGRES.cleanup!(dir);
    await Deno.remove(dir, { recursive: true });
  }
}

const INSERT = { sql: "INSERT INTO kine(name) VALUES ($1) RETURNING id", params: ["/a"] };

Deno.test("[postgres] a batch's NOTIFY follows its COMMIT in the same message, in a transaction of its own", async () => {
  await withDriver(async (driver, other, heard) => {
    // Hold the batch at its insert, and look at what it sent while it waits.
    const running = other.begin(async (tx) => {
      await tx.unsafe("LOCK TABLE kine IN EXCLUSIVE MODE");
      let text = "";
      for (let i = 0; i < 500 && !text; i++) {
        const [row] = await tx.unsafe(
          "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'INSERT INTO kine%' AND pid <> pg_backend_pid()",
        );
        text = row?.query ?? "";
        if (!text) await new Promise((r) => setTimeout(r, 10));
      }
      return text;
    });
    const batch = driver.pipeline!([INSERT]);
    const text = await running;
    const at = (part: string) => text.indexOf(part);
    assert.ok(at("pg_notify") > 0, `no NOTIFY in the batch: ${text}`);
    assert.ok(
      at("INSERT") < at("COMMIT") && at("COMMIT") < at("pg_notify"),
      `the NOTIFY is inside the write transaction: ${text}`,
    );
    const [answer] = await batch;
    const id = Number(answer.rows[0][0]);
    await heardAt(heard, 1, 5000);
    const [revision, tag] = heard[0].split(":");
    assert.equal(Number(revision), id);
    assert.ok(tag, `untagged payload ${heard[0]}`);
    // What the batch announced is not announced again; what is above it is.
    driver.notifier!.announce(id);
    driver.notifier!.announce(id + 1);
    await heardAt(heard, 2, 5000);
    assert.deepEqual(heard.slice(1), [`${id + 1}:${tag}`]);
  });
});

Deno.test("[postgres] a batch that fails commits nothing and announces nothing", async () => {
  await withDriver(async (driver, other, heard) => {
    await assert.rejects(driver.pipeline!([INSERT, { sql: "SELECT 1/0", params: [] }]));
    await heardAt(heard, 1, 300);
    assert.deepEqual(heard, []);
    assert.equal((await other.unsafe("SELECT id FROM kine")).length, 0);
    // Nothing was left open on the pool's connections.
    const [answer] = await driver.pipeline!([INSERT]);
    assert.ok(Number(answer.rows[0][0]) > 0);
  });
});
