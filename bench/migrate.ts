/**
 * Times `kine migrate`: generates a source (kine on SQLite, PostgreSQL, MySQL
 * or NATS, or a private etcd) holding `--rows` revisions of 1 KiB values with
 * history (every key written twice), copies it into an empty target with the
 * real command, and prints rows/s and whether the digests matched.
 *
 *   deno run -A bench/migrate.ts [--rows 200000] [--pairs sqlite:postgres,etcd:sqlite]
 *     [--follow sqlite:postgres] [--rate 500] [--seconds 20]
 *
 * `--follow SRC:DST` (SQL targets) adds the cut-over row: after a copy of
 * `--rows` revisions, `kine migrate --follow` tails the source while writers
 * put `--rate` keys a second for `--seconds`; each write's lag is the time
 * from its commit on the source until the target's highest id (polled every
 * 10 ms) reaches its revision. Printed: the rate achieved, lag p50/p99/max,
 * and the digest the command compares once the writers stopped.
 *
 * Uses the shared PostgreSQL (127.0.0.1:5432), MariaDB (127.0.0.1:3306) and
 * NATS (127.0.0.1:4222) of the test machine, in databases and buckets of its
 * own that it drops afterwards.
 */
import postgres from "postgres";
import mysql from "mysql2/promise";
import { openBackend } from "../lib/backend/endpoint.ts";
import type { PutOp } from "../lib/backend/types.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { silentLogger } from "../lib/log/mod.ts";
import { b, connect } from "../tests/helpers/client.ts";
import { deleteBucket } from "../tests/helpers/nats.ts";
import { etcdStore, spawnEtcd } from "./etcd.ts";

/** `--name value` or `--name=value`, else the default. */
function flag(name: string, fallback: string): string {
  for (let i = 0; i < Deno.args.length; i++) {
    const a = Deno.args[i];
    if (a === `--${name}`) return Deno.args[i + 1] ?? fallback;
    if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
  }
  return fallback;
}

const args = {
  rows: flag("rows", "200000"),
  pairs: flag("pairs", "sqlite:postgres,etcd:sqlite"),
  follow: flag("follow", ""),
  rate: Number(flag("rate", "500")),
  seconds: Number(flag("seconds", "20")),
};
const ROWS = Number(args.rows);
const VALUE = new Uint8Array(1024).map((_, i) => 97 + (i % 26));
const KEYS = ROWS / 2;

/** A store the bench can create, fill, name as an endpoint and drop. */
interface Store {
  endpoint: string;
  drop(): Promise<void>;
}

const run = crypto.randomUUID().slice(0, 8);

async function kineStore(kind: string, role: string): Promise<Store> {
  const name = `kmig_${run}_${role}`;
  switch (kind) {
    case "sqlite": {
      const dir = await Deno.makeTempDir({ prefix: "kine-bench-migrate-" });
      return {
        endpoint: `sqlite://${dir}/state.db`,
        drop: () => Deno.remove(dir, { recursive: true }),
      };
    }
    case "postgres":
      return {
        endpoint: `postgres://postgres@127.0.0.1:5432/${name}?sslmode=disable`,
        drop: async () => {
          const sql = postgres("postgres://postgres@127.0.0.1:5432/postgres", { max: 1 });
          await sql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
          await sql.end();
        },
      };
    case "mysql":
      return {
        endpoint: `mysql://root@tcp(127.0.0.1:3306)/${name}`,
        drop: async () => {
          const c = await mysql.createConnection({ host: "127.0.0.1", user: "root" });
          await c.query(`DROP DATABASE IF EXISTS ${name}`);
          await c.end();
        },
      };
    case "nats":
      return {
        endpoint: `nats://127.0.0.1:4222?bucket=${name}`,
        drop: () => deleteBucket(name),
      };
  }
  throw new Error(`unknown store ${kind}`);
}

const put = (key: string): PutOp => ({
  type: "put",
  key,
  value: VALUE,
  lease: 0,
  prevKv: false,
  ignoreValue: false,
  ignoreLease: false,
});

/** Writes every key twice through a kine backend: txns of 100 puts, or single puts on NATS. */
async function fillKine(kind: string, endpoint: string): Promise<void> {
  const { backend } = await openBackend(
    backendOptions({ ...defaultConfig(), endpoint }, silentLogger),
  );
  await backend.start();
  try {
    for (let round = 0; round < 2; round++) {
      if (kind === "nats") {
        await inParallel(
          KEYS,
          64,
          (i) => backend.txn({ compare: [], success: [put(`/registry/objs/${i}`)], failure: [] }),
        );
      } else {
        for (let i = 0; i < KEYS; i += 100) {
          const ops = Array.from(
            { length: Math.min(100, KEYS - i) },
            (_, j) => put(`/registry/objs/${i + j}`),
          );
          await backend.txn({ compare: [], success: ops, failure: [] });
        }
      }
    }
  } finally {
    await backend.close();
  }
}

async function inParallel(n: number, width: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** `kine migrate` as its own process, with its output piped. */
function migrateCommand(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../main.ts", import.meta.url).pathname, "migrate", ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

async function timeMigrate(from: string, to: string): Promise<string> {
  const started = performance.now();
  const out = await migrateCommand(["--from", from, "--to", to]).output();
  const wall = (performance.now() - started) / 1000;
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`migrate failed: ${new TextDecoder().decode(out.stderr)}`);
  const copied = /copied (\d+) rows in ([\d.]+) s \((\d+) rows\/s\)/.exec(text);
  const digest = /digest at revision \d+: (.*)$/m.exec(text)?.[1] ?? "?";
  return `${copied?.[1]} rows, copy ${copied?.[2]} s = ${copied?.[3]} rows/s; ` +
    `whole command ${wall.toFixed(1)} s; ${digest}`;
}

/** The highest id of a SQL target's log (0 while its table does not exist yet). */
function targetHead(kind: string, endpoint: string): { head(): Promise<number>; close(): void } {
  const name = endpoint.split("/").pop()!.split("?")[0];
  if (kind === "postgres") {
    const sql = postgres(`postgres://postgres@127.0.0.1:5432/${name}`, { max: 1 });
    return {
      head: () => sql`SELECT MAX(id) AS m FROM kine`.then((r) => Number(r[0].m ?? 0), () => 0),
      close: () => void sql.end(),
    };
  }
  if (kind === "mysql") {
    const pool = mysql.createPool({ host: "127.0.0.1", user: "root", database: name });
    return {
      head: () =>
        pool.query("SELECT MAX(id) AS m FROM kine").then(
          ([rows]) => Number((rows as { m: number }[])[0].m ?? 0),
          () => 0,
        ),
      close: () => void pool.end(),
    };
  }
  throw new Error(`--follow measures SQL targets on postgres or mysql, not ${kind}`);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
}

/** The cut-over row: lag of `kine migrate --follow` under steady writes, then the digest. */
async function followRow(from: string, to: string): Promise<string> {
  const source = await kineStore(from, "fsrc");
  const target = await kineStore(to, "fdst");
  const poll = targetHead(to, target.endpoint);
  try {
    await fillKine(from, source.endpoint);
    const { backend } = await openBackend(
      backendOptions({ ...defaultConfig(), endpoint: source.endpoint }, silentLogger),
    );
    await backend.start();
    const start = await backend.latestRevision();
    const child = migrateCommand([
      "--from",
      source.endpoint,
      "--to",
      target.endpoint,
      "--follow",
      "--until-idle",
      "3s",
    ]).spawn();
    const output = child.output();
    while (await poll.head() < start) await new Promise((r) => setTimeout(r, 50));
    const committed = new Map<number, number>();
    const seen = new Map<number, number>();
    let polling = true;
    let newest = 0;
    const poller = (async () => {
      let last = start;
      // Until the target has every write (or, if the command died, 30 s after the writers).
      let deadline = Infinity;
      while ((polling || last < newest) && performance.now() < deadline) {
        if (!polling) deadline = Math.min(deadline, performance.now() + 30_000);
        const head = await poll.head();
        const now = performance.now();
        for (let rev = last + 1; rev <= head; rev++) seen.set(rev, now);
        last = Math.max(last, head);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    // A tick every 10 ms writes the puts due by then, so the rate holds when a tick runs late.
    const began = performance.now();
    let written = 0;
    while (performance.now() - began < args.seconds * 1000) {
      const due = Math.floor(((performance.now() - began) / 1000) * args.rate) - written;
      await Promise.all(Array.from({ length: due }, async () => {
        const i = written++;
        const r = await backend.txn({
          compare: [],
          success: [put(`/registry/live/${i % 1000}`)],
          failure: [],
        });
        committed.set(r.revision, performance.now());
        newest = Math.max(newest, r.revision);
      }));
      await new Promise((r) => setTimeout(r, 10));
    }
    const took = (performance.now() - began) / 1000;
    await backend.close();
    polling = false;
    await poller;
    const out = await output;
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) throw new Error(`migrate failed: ${new TextDecoder().decode(out.stderr)}`);
    const lags = [...committed].map(([rev, at]) => (seen.get(rev) ?? Infinity) - at)
      .sort((a, b) => a - b);
    const digest = /digest at revision \d+: (.*)$/m.exec(text)?.[1] ?? "?";
    return `${written} writes in ${took.toFixed(1)} s (${Math.round(written / took)}/s); ` +
      `lag p50 ${percentile(lags, 0.5).toFixed(0)} ms, p99 ${
        percentile(lags, 0.99).toFixed(0)
      } ms, ` +
      `max ${lags.at(-1)?.toFixed(0)} ms; ${digest}`;
  } finally {
    poll.close();
    await source.drop();
    await target.drop();
  }
}

if (args.follow) {
  const [from, to] = args.follow.split(":");
  console.log(`${from} -> ${to} --follow at ${args.rate} writes/s: ` + await followRow(from, to));
}

for (const pair of args.pairs.split(",").filter((p) => p !== "")) {
  const [from, to] = pair.split(":");
  const target = await kineStore(to, "dst");
  let source: Store;
  let stopEtcd = () => Promise.resolve();
  const generating = performance.now();
  if (from === "etcd") {
    const dir = await Deno.makeTempDir({ prefix: "kine-bench-etcd-" });
    const server = spawnEtcd(etcdStore(dir), undefined, `${dir}/etcd.log`);
    stopEtcd = async () => {
      await server.stop();
      await Deno.remove(dir, { recursive: true });
    };
    const client = connect(server.target);
    for (let waited = 0;; waited += 100) {
      try {
        await client.kv.range({ key: b("x") });
        break;
      } catch (err) {
        if (waited > 30_000) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    // Single puts (a txn's keys would share one revision); every key twice.
    for (let round = 0; round < 2; round++) {
      await inParallel(
        KEYS,
        64,
        (i) => client.kv.put({ key: b(`/registry/objs/${i}`), value: VALUE }),
      );
    }
    client.close();
    source = { endpoint: `etcd://${server.target}`, drop: () => Promise.resolve() };
  } else {
    source = await kineStore(from, "src");
    await fillKine(from, source.endpoint);
  }
  const took = ((performance.now() - generating) / 1000).toFixed(0);
  try {
    console.log(
      `${from} -> ${to} (source generated in ${took} s): ` +
        await timeMigrate(source.endpoint, target.endpoint),
    );
  } finally {
    await stopEtcd();
    await source.drop();
    await target.drop();
  }
}
