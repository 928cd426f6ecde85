/**
 * PostgreSQL's commit announcements between kine servers: a write
 * transaction never NOTIFYs itself (a transaction that notified commits
 * holding one lock for the whole cluster across its WAL flush, so the
 * servers' commits would queue behind each other); the announcement follows
 * the commit, tagged with the process that sent it.
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

Deno.test("[postgres] a write batch sends no NOTIFY of its own; the announcement after it does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-ha-notify-" });
  // The engine takes the DSN without its scheme, as the endpoint parser hands it on.
  const dsn = POSTGRES.endpoint(dir).replace(/^postgres:\/\//, "");
  const driver = await postgresEngine.connect(dsn, OPTIONS);
  const listener = postgres(`${PG_URL}/${databaseName(dir)}`, { max: 1, onnotice: () => {} });
  const heard: string[] = [];
  try {
    await listener.unsafe("CREATE TABLE kine (id BIGSERIAL PRIMARY KEY, name TEXT)");
    await listener.listen("kine", (payload) => heard.push(payload));
    const [answer] = await driver.pipeline!([
      { sql: "INSERT INTO kine(name) VALUES ($1) RETURNING id", params: ["/a"] },
    ]);
    const id = Number(answer.rows[0][0]);
    await heardAt(heard, 1, 300);
    assert.deepEqual(heard, [], "the write transaction notified");
    driver.notifier!.announce(id);
    await heardAt(heard, 1, 5000);
    // (heard was narrowed to [] by the assertion above; the listener has pushed since.)
    const payload = (heard as string[])[0] ?? "";
    const [revision, tag] = payload.split(":");
    assert.equal(Number(revision), id);
    assert.ok(tag, `untagged payload ${payload}`);
  } finally {
    await listener.end();
    await driver.close();
    await POSTGRES.cleanup!(dir);
    await Deno.remove(dir, { recursive: true });
  }
});
