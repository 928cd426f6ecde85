/**
 * Start-up as an operator meets it: configuration errors are one line naming the flag or path and
 * the reason (exit 2, before anything listens), the start-up line says what is served, and the
 * listeners bind where they say.
 */
import assert from "node:assert/strict";
import { makeCerts } from "./helpers/certs.ts";
import { assertOneLineError, inTempDir, READY, run, start } from "./helpers/cli.ts";
import { maskEndpoint } from "../lib/backend/mask.ts";

Deno.test("half-configured listener TLS exits 2 with one line naming the flags, before anything starts", () =>
  inTempDir(async (dir) => {
    const certs = await makeCerts(dir);
    const cert = ["--server-cert-file", "/nope/cert.pem"];
    const key = ["--server-key-file", certs.serverKey];
    const ca = ["--trusted-ca-file", certs.ca];
    const cases: [string[], string][] = [
      [cert, "--server-cert-file is set without --server-key-file"],
      [key, "--server-key-file is set without --server-cert-file"],
      [ca, "--trusted-ca-file is set without --server-cert-file and --server-key-file"],
      [["--client-cert-auth"], "--client-cert-auth is set without --trusted-ca-file"],
      [
        ["--server-cert-file", certs.serverCert, ...key, "--client-cert-auth"],
        "--client-cert-auth is set without --trusted-ca-file",
      ],
    ];
    for (const [flags, text] of cases) {
      // The default endpoint: a run that got as far as the datastore would create ./db.
      const r = await run(["--listen-address", "127.0.0.1:0", ...flags], { cwd: dir });
      assertOneLineError(r, 2, text);
      await assert.rejects(Deno.stat(`${dir}/db`), Deno.errors.NotFound);
    }
  }));

Deno.test("unreadable or non-PEM listener TLS files: one line naming the flag and the path, exit 2", () =>
  inTempDir(async (dir) => {
    const certs = await makeCerts(dir);
    const common = ["--listen-address", "127.0.0.1:0", "--metrics-bind-address", "0"];
    const missing = await run([
      ...common,
      "--server-cert-file",
      "/nope/cert.pem",
      "--server-key-file",
      certs.serverKey,
    ], { cwd: dir });
    assertOneLineError(missing, 2, 'cannot read --server-cert-file "/nope/cert.pem": no such file');
    const notPem = await run([
      ...common,
      "--server-cert-file",
      certs.serverCert,
      "--server-key-file",
      certs.serverCert,
    ], { cwd: dir });
    assertOneLineError(
      notPem,
      2,
      `--server-key-file ${JSON.stringify(certs.serverCert)} holds no PEM private key`,
    );
    const caDir = await run([
      ...common,
      "--server-cert-file",
      certs.serverCert,
      "--server-key-file",
      certs.serverKey,
      "--trusted-ca-file",
      dir,
    ], { cwd: dir });
    assertOneLineError(caDir, 2, `cannot read --trusted-ca-file "${dir}"`);
    await assert.rejects(Deno.stat(`${dir}/db`), Deno.errors.NotFound);
  }));

Deno.test("a metrics address in use: exit 1, one error naming the metrics listener and address", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await run([
      "--listen-address",
      "127.0.0.1:0",
      "--metrics-bind-address",
      `127.0.0.1:${port}`,
      "--endpoint",
      "memory://",
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(
      r.stderr,
      new RegExp(
        `failed to start kine: metrics listener: cannot listen on 127\\.0\\.0\\.1:${port}: `,
      ),
    );
    assert.doesNotMatch(r.stderr, /^\s+at /m);
  } finally {
    busy.close();
  }
});

Deno.test("endpoint errors echo the masked value, list the valid schemes, name the SQLite path", () =>
  inTempDir(async (dir) => {
    const common = ["--listen-address", "127.0.0.1:0", "--metrics-bind-address", "0"];
    const noScheme = await run([...common, "--endpoint", "admin:hunter2@db.invalid/kine"]);
    assertOneLineError(noScheme, 2, 'invalid datastore endpoint "admin:***@db.invalid/kine"');
    assert.doesNotMatch(noScheme.stderr, /hunter2/);
    const scheme = await run([...common, "--endpoint", "http://admin:hunter2@x"]);
    assertOneLineError(
      scheme,
      2,
      'unknown driver "http" in --endpoint: valid schemes are sqlite, litestream, postgres, ' +
        "postgresql, mysql, memory, nats, jetstream",
    );
    assert.doesNotMatch(scheme.stderr, /hunter2/);
    await Deno.writeTextFile(`${dir}/file`, "");
    assertOneLineError(
      await run([...common, "--endpoint", `sqlite://${dir}/file/sub/state.db`]),
      2,
      `cannot open SQLite database "${dir}/file/sub/state.db": Not a directory`,
    );
    assertOneLineError(
      await run([...common, "--endpoint", `sqlite://${dir}`]),
      2,
      `cannot open SQLite database "${dir}": Is a directory`,
    );
  }));

Deno.test("maskEndpoint hides passwords and tokens, keeps the rest", () => {
  const cases: [string, string][] = [
    ["postgres://u:p%40ss@h:5432/db?sslmode=require", "postgres://u:***@h:5432/db?sslmode=require"],
    ["mysql://root:pw@tcp(h:3306)/k", "mysql://root:***@tcp(h:3306)/k"],
    ["mysql://root@tcp(h:3306)/k", "mysql://root@tcp(h:3306)/k"],
    ["nats://tok@h:4222?bucket=b", "nats://***@h:4222?bucket=b"],
    ["nats://h?token=abc&bucket=b", "nats://h?token=***&bucket=b"],
    ["postgres://h/db?password=x", "postgres://h/db?password=***"],
    ["sqlite:///var/lib/kine/db/state.db", "sqlite:///var/lib/kine/db/state.db"],
    ["user:secret@host/db", "user:***@host/db"],
  ];
  for (const [raw, want] of cases) assert.equal(maskEndpoint(raw), want, raw);
});

Deno.test("the start-up line names engine, endpoint, database, table, revisions and listeners", () =>
  inTempDir(async (dir) => {
    const { d, url } = await start([
      "--listen-address",
      "127.0.0.1:0",
      "--metrics-bind-address",
      ":0",
      "--endpoint",
      `sqlite://${dir}/s.db?_busy_timeout=1000&_bogus=1`,
      "--table-name",
      "ops_table",
    ], { cwd: dir });
    try {
      const line = await d.waitForLine(/ INFO serving /);
      const metrics = await d.waitForLine(/Metrics server listening/);
      const port = /address=0\.0\.0\.0:(\d+)/.exec(metrics)?.[1];
      assert.ok(port, `the metrics log names the wildcard address bound: ${metrics}`);
      assert.match(
        line,
        new RegExp(
          `serving engine=sqlite endpoint="sqlite://${dir}/s\\.db\\?_busy_timeout=1000&_bogus=1" ` +
            `database=${dir}/s\\.db table=ops_table revision=2 compact_revision=0 ` +
            `grpc=${url} metrics=http://127\\.0\\.0\\.1:${port}/metrics$`,
        ),
      );
      // upstream's SQLite driver ignores unknown parameters; kine does too, with a warning
      const warn = await d.waitForLine(/WARN ignoring unknown --endpoint parameters/);
      assert.match(warn, /parameters=_bogus /);
      // the start-up line comes before the readiness line
      const at = (re: RegExp) => d.stderr.findIndex((l) => re.test(l));
      assert.ok(at(/ INFO serving /) < at(READY));
    } finally {
      await d.dispose();
    }
  }));

Deno.test("unknown NATS and SQLite endpoint parameters are found (warned about at start-up)", async () => {
  const { parseNatsEndpoint } = await import("../lib/backend/nats/options.ts");
  assert.deepEqual(parseNatsEndpoint("nats://h?bukket=x&bucket=b&noEmbed").unknown, ["bukket"]);
  assert.deepEqual(parseNatsEndpoint("nats://h?bucket=b").unknown, []);
});

Deno.test("an unreadable datastore TLS file: one line naming the file and its flags, exit 2", async () => {
  for (const endpoint of ["mysql://root@tcp(127.0.0.1:3306)/kine", "postgres://127.0.0.1/kine"]) {
    const r = await run([
      "--listen-address",
      "127.0.0.1:0",
      "--metrics-bind-address",
      "0",
      "--ca-file",
      "/nope/ca.pem",
      "--endpoint",
      endpoint,
    ]);
    assertOneLineError(
      r,
      2,
      'cannot read the datastore TLS CA (--ca-file, sslrootcert) "/nope/ca.pem": No such file',
    );
  }
});
