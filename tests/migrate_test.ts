/**
 * `kine migrate` between kine datastores: every pair of backends of the
 * conformance matrix (memory left out: nothing outlives the process), a
 * non-empty target refused, and a copy killed with SIGKILL then resumed.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import mysql from "mysql2/promise";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { silentLogger } from "../lib/log/mod.ts";
import type { LogRecord, Status } from "../lib/backend/types.ts";
import { keyFromText } from "../lib/backend/keys.ts";
import { migrate, parseMigrateArgs } from "../lib/migrate/mod.ts";
import { Progress } from "../lib/migrate/progress.ts";
import { freePort } from "./helpers/proc.ts";
import { MYSQL, NATS, PG_URL, POSTGRES, SQLITE } from "./helpers/backends.ts";
import { type Importer, openImporter } from "../lib/backend/import.ts";
import {
  at,
  del,
  enc,
  fillSource,
  history,
  open,
  options,
  put,
  QUIET,
  STORES,
  withStores,
} from "./helpers/migrate.ts";

Deno.test("kine migrate copies every revision between every pair of backends", async (t) => {
  for (const from of STORES) {
    for (const to of STORES) {
      await t.step(`${from.name} -> ${to.name}`, async () => {
        await withStores([from, to], async (src, dst) => {
          const source = await open(src);
          let head: number, status: Status;
          try {
            await fillSource(source);
            head = await source.latestRevision();
            status = await source.status();
          } finally {
            await source.close();
          }
          const code = await migrate(
            options(["--from", src, "--to", dst]),
            silentLogger,
            QUIET,
            () => false,
          );
          assert.equal(code, 0);
          const [a, b] = [await open(src), await open(dst)];
          try {
            const compact = status.compactRevision;
            assert.equal((await b.status()).compactRevision >= compact, true);
            for (let rev = Math.max(compact, 1); rev <= head; rev++) {
              assert.deepEqual(await at(b, rev), await at(a, rev), `at revision ${rev}`);
            }
            assert.deepEqual(
              await history(b, compact + 1, head),
              await history(a, compact + 1, head),
            );
            assert.deepEqual(
              (await b.leaseRecords()).map((l) => l.id),
              (await a.leaseRecords()).map((l) => l.id),
            );
            // The copy is a working store: a write lands above the copied revisions.
            const next = await put(b, "/registry/pods/new", "v");
            assert.ok(next.revision > head);
          } finally {
            await a.close();
            await b.close();
          }
        });
      });
    }
  }
});

Deno.test("kine migrate refuses a target that holds data, before writing anything", async () => {
  await withStores([SQLITE, SQLITE], async (src, dst) => {
    const source = await open(src);
    await put(source, "/a", "1");
    await source.close();
    const target = await open(dst);
    await put(target, "/b", "2");
    const before = await target.latestRevision();
    await target.close();
    await assert.rejects(
      migrate(options(["--from", src, "--to", dst]), silentLogger, QUIET, () => false),
      /target sqlite:\/\/.* is not empty \(3 rows\)/,
    );
    const again = await open(dst);
    assert.equal(await again.latestRevision(), before);
    assert.deepEqual((await at(again, 0)).map((kv) => kv.key), ["/b", "/registry/health"]);
    await again.close();
  });
});

Deno.test("kine migrate stopped by Ctrl-C, then killed with SIGKILL, is finished by --resume", async () => {
  await withStores([SQLITE, POSTGRES], async (src, dst) => {
    const source = await open(src);
    const value = "x".repeat(512);
    for (let i = 0; i < 300; i++) {
      await source.txn({
        compare: [],
        success: Array.from({ length: 100 }, (_, j) => ({
          type: "put" as const,
          key: `/registry/k${j}/${i % 50}`,
          value: enc.encode(value + i),
          lease: 0,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        })),
        failure: [],
      });
    }
    const head = await source.latestRevision();
    await source.close();
    const args = ["run", "-A", "main.ts", "migrate", "--from", src, "--to", dst];
    const db = dst.replace(/\?.*/, "").split("/").pop()!;
    const sql = postgres(`${PG_URL}/${db}`, { max: 1, onnotice: () => {} });
    const count = async () =>
      (await sql`SELECT COUNT(*)::int AS n FROM kine`.catch(() => [{ n: 0 }]))[0].n as number;
    /** Runs the command, and sends `signal` once the target holds more than `above` rows. */
    const interrupt = async (extra: string[], signal: Deno.Signal, above: number) => {
      const child = new Deno.Command(Deno.execPath(), {
        args: [...args, "--batch-size", "200", ...extra],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      for (let waited = 0; (await count()) <= above; waited += 20) {
        assert.ok(waited < 60_000, "the copy made no progress");
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill(signal);
      const out = await child.output();
      const n = await count();
      assert.ok(n > above && n < head, `rows after ${signal}: ${n} of ${head}`);
      assert.equal(n % 200, 0, "a batch is all or nothing");
      return { code: out.code, out: new TextDecoder().decode(out.stdout), rows: n };
    };
    const rerun = async (extra: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...args, ...extra],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const d = new TextDecoder();
      return { code: out.code, out: d.decode(out.stdout), err: d.decode(out.stderr) };
    };
    try {
      const stopped = await interrupt([], "SIGINT", 0);
      assert.equal(stopped.code, 130);
      assert.match(stopped.out, /interrupted at revision \d+: run the same command with --resume/);
      const refused = await rerun([]);
      assert.equal(refused.code, 2);
      assert.match(refused.err, /holds an unfinished copy: add --resume/);
      await interrupt(["--resume"], "SIGKILL", stopped.rows);
    } finally {
      await sql.end();
    }
    const resumed = await rerun(["--resume"]);
    assert.equal(resumed.code, 0, resumed.err);
    assert.match(resumed.out, /\(resumed\)/);
    assert.match(resumed.out, new RegExp(`digest at revision ${head}: .*: equal`));
    const a = await open(src);
    const b = await open(dst);
    try {
      assert.deepEqual(await at(b, head), await at(a, head));
      assert.deepEqual(await at(b, head - 5000), await at(a, head - 5000));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("kine migrate --follow applies the source's writes made during and after the copy", async () => {
  await withStores([SQLITE, POSTGRES], async (src, dst) => {
    const source = await open(src);
    await fillSource(source);
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing || i < 50; i++) {
        await put(source, `/registry/live/k${i % 20}`, `w${i}`);
        if (i % 7 === 0) await del(source, `/registry/live/k${(i + 3) % 20}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const copy = migrate(
      options(["--from", src, "--to", dst, "--follow", "--until-idle", "1500ms"]),
      silentLogger,
      QUIET,
      () => false,
    );
    await new Promise((r) => setTimeout(r, 1000));
    writing = false;
    await writer;
    const head = await source.latestRevision();
    assert.equal(await copy, 0);
    const b = await open(dst);
    try {
      assert.equal(await b.latestRevision(), head);
      assert.deepEqual(await at(b, head), await at(source, head));
      const { compactRevision } = await source.status();
      assert.deepEqual(
        await history(b, compactRevision + 1, head),
        await history(source, compactRevision + 1, head),
      );
    } finally {
      await b.close();
      await source.close();
    }
  });
});

/** A private etcd 3.4 on loopback ports; `target` is `127.0.0.1:<port>`; with `tls`, mTLS on. */

Deno.test("kine migrate names an unreachable source in one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-mig-" });
  try {
    await assert.rejects(
      migrate(
        options(["--from", `etcd://127.0.0.1:${freePort()}`, "--to", `sqlite://${dir}/t.db`]),
        silentLogger,
        QUIET,
        () => false,
      ),
      (err: Error) =>
        /^source etcd:\/\/127\.0\.0\.1:\d+: /.test(err.message) && !err.message.includes("\n"),
    );
    const k = await open(`sqlite://${dir}/t.db`);
    assert.deepEqual((await at(k, 0)).map((kv) => kv.key), ["/registry/health"]);
    await k.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kine migrate's progress: a bar with rows/s and ETA on a terminal, plain lines elsewhere", () => {
  const lines: string[] = [];
  const bar = new Progress({ write: (t) => lines.push(t), isTerminal: true }, 0, 1000);
  bar.add(250, 250);
  bar.done(1000);
  assert.match(
    lines[0],
    /^\r\[#{8} {22}\] 25\.0% 250 rows, revision 250\/1000, \d+ rows\/s, ETA \d+s/,
  );
  assert.equal(lines.at(-1)!.endsWith("\n"), true);
  const plain: string[] = [];
  new Progress({ write: (t) => plain.push(t), isTerminal: false }, 0, 1000).add(10, 10);
  assert.match(plain[0], /^copy: 10 rows, revision 10\/1000, \d+ rows\/s, ETA \d+s\n$/);
});

Deno.test("kine migrate's flags: one-line errors naming the flag, exit status 2", async () => {
  const bad = (args: string[]) => {
    const r = parseMigrateArgs(args);
    return r.kind === "error" ? r.message : r.kind;
  };
  assert.equal(bad(["--from", "sqlite://a"]), "--to is required");
  assert.equal(
    bad(["--from", "a", "--to", "b", "--until-idle", "5s"]),
    "--until-idle needs --follow",
  );
  assert.equal(
    bad(["--from", "a", "--to", "b", "--batch-size", "0"]).includes("--batch-size"),
    true,
  );
  assert.equal(bad(["--from", "a", "--to", "b", "--frobnicate"]), "unknown flag: --frobnicate");
  assert.equal(bad(["--help"]), "help");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", "migrate", "--from", "sqlite://x.db"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.equal(new TextDecoder().decode(out.stderr), "kine migrate: --to is required\n");
});

Deno.test("kine migrate names a key the target cannot store before writing anything", async () => {
  await withStores([SQLITE, MYSQL], async (src, dst) => {
    const source = await open(src);
    try {
      await put(source, "/registry/a", "1");
      await put(source, keyFromText("/registry/é"), "2"); // keys are bytes: é is C3 A9
    } finally {
      await source.close();
    }
    await assert.rejects(
      migrate(options(["--from", src, "--to", dst]), silentLogger, QUIET, () => false),
      /the target cannot store key "\/registry\/é" \(revision 4\): .*ASCII/,
    );
    const db = dst.split("/").pop()!;
    const conn = await mysql.createConnection({ host: "127.0.0.1", user: "root", database: db });
    try {
      const [rows] = await conn.query("SELECT COUNT(*) AS n FROM kine");
      assert.equal((rows as { n: number }[])[0].n, 0);
    } finally {
      await conn.end();
    }
  });
});

/** The events a watch from `from` with previous values gets, up to revision `upTo`. */
/** A log row creating `name` at revision `id`, for an importer. */
function row(id: number, name: string): LogRecord {
  return {
    id,
    name,
    created: true,
    deleted: false,
    createRevision: 0,
    prevRevision: 0,
    lease: 0,
    value: enc.encode(name),
    oldValue: null,
    version: 1,
  };
}

/** An importer on `endpoint`, closed after `fn`. */
async function withImporter(endpoint: string, fn: (importer: Importer) => Promise<void>) {
  const importer = await openImporter(
    backendOptions({ ...defaultConfig(), endpoint }, silentLogger),
  );
  try {
    await fn(importer);
  } finally {
    await importer.close();
  }
}

Deno.test("kine migrate into PostgreSQL: a batch the server refuses mid-COPY fails whole", async () => {
  await withStores([POSTGRES, POSTGRES], async (_src, dst) => {
    await withImporter(dst, async (importer) => {
      const { head } = await importer.state();
      await importer.importRows([row(head + 1, "/a"), row(head + 2, "/b")]);
      // The second row repeats a revision: the primary key refuses it after the first was sent.
      await assert.rejects(
        importer.importRows([row(head + 3, "/c"), row(head + 2, "/d")]),
        /COPY refused/,
      );
      assert.deepEqual(await importer.state(), { rows: head + 2, head: head + 2, marker: null });
      await importer.importRows([row(head + 3, "/c")]);
      assert.equal((await importer.state()).head, head + 3);
    });
  });
});

Deno.test("kine migrate into NATS: a row JetStream refuses (another writer took its sequence) fails the batch", async () => {
  await withStores([NATS, NATS], async (_src, dst) => {
    await withImporter(dst, async (importer) => {
      const { head } = await importer.state();
      await importer.importRows([row(head + 1, "/a"), row(head + 2, "/b")]);
      // Another writer appends: the importer's next expected sequence is taken.
      const other = await open(dst);
      const taken = (await put(other, "/other", "x")).revision;
      await other.close();
      await assert.rejects(
        importer.importRows([row(head + 3, "/c"), row(head + 4, "/d")]),
        /JetStream: wrong last sequence/,
      );
      // Neither row landed: the stream ends at the other writer's message.
      assert.equal((await importer.state()).head, taken);
    });
  });
});
