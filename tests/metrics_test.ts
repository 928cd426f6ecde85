import assert from "node:assert/strict";
import {
  CONTENT_TYPE,
  Counter,
  createKineMetrics,
  escapeLabelValue,
  formatValue,
  Gauge,
  Histogram,
  parseListenAddress,
  Registry,
  serveMetrics,
  SQL_TIME_BUCKETS,
} from "../lib/metrics/mod.ts";
import type { Logger } from "../lib/log/mod.ts";

Deno.test("counter with labels renders HELP/TYPE, sorted children and escaped values", () => {
  const r = new Registry();
  const c = r.counter({
    name: "kine_sql_total",
    help: "Total number of SQL operations",
    labelNames: ["name", "error_code"] as const,
  });
  c.labels("get_current_sql", "").inc();
  c.labels("get_current_sql", "").inc(2);
  c.labels("compact_sql", 'a"b\\c\nd').inc();
  assert.equal(
    r.render(),
    [
      "# HELP kine_sql_total Total number of SQL operations",
      "# TYPE kine_sql_total counter",
      'kine_sql_total{name="compact_sql",error_code="a\\"b\\\\c\\nd"} 1',
      'kine_sql_total{name="get_current_sql",error_code=""} 3',
      "",
    ].join("\n"),
  );
  assert.equal(c.get("get_current_sql", ""), 3);
  // reading an unused label set neither fails nor adds a sample
  assert.equal(c.get("never", "used"), 0);
  assert.doesNotMatch(r.render(), /never/);
});

Deno.test("label-set children are cached and validated", () => {
  const c = new Counter({ name: "x_total", help: "x", labelNames: ["a", "b"] as const });
  const child = c.labels("1", "2");
  assert.equal(c.labels("1", "2"), child);
  assert.notEqual(c.labels("1", "3"), child);
  assert.notEqual(c.labels("2", "2"), child);
  assert.throws(() => (c.labels as (...v: string[]) => unknown)("1"), /expects 2 label values/);
  assert.throws(() => c.inc(), /requires labels/);
  assert.throws(() => child.inc(-1), /non-negative/);
  assert.throws(() => child.inc(NaN), /non-negative/);
});

Deno.test("unlabelled metrics render zero; labelled families without children are omitted", () => {
  const r = new Registry();
  r.counter({ name: "a_total", help: "A" });
  r.counter({ name: "b_total", help: "B", labelNames: ["x"] as const });
  r.gauge({ name: "c", help: "multi\nline \\ help" });
  assert.equal(
    r.render(),
    "# HELP a_total A\n# TYPE a_total counter\na_total 0\n" +
      "# HELP c multi\\nline \\\\ help\n# TYPE c gauge\nc 0\n",
  );
  assert.equal(new Registry().render(), "");
});

Deno.test("histogram with labels: cumulative buckets, le inclusive, +Inf, _sum, _count", () => {
  const r = new Registry();
  const h = r.histogram({
    name: "lat_seconds",
    help: "Latency",
    labelNames: ["op"] as const,
    buckets: [0.1, 0.5, 1],
  });
  const get = h.labels("get");
  get.observe(0.05);
  get.observe(0.1); // le is inclusive
  get.observe(0.7);
  get.observe(3);
  h.labels("put").observe(0.5);
  assert.equal(
    r.render(),
    [
      "# HELP lat_seconds Latency",
      "# TYPE lat_seconds histogram",
      'lat_seconds_bucket{op="get",le="0.1"} 2',
      'lat_seconds_bucket{op="get",le="0.5"} 2',
      'lat_seconds_bucket{op="get",le="1"} 3',
      'lat_seconds_bucket{op="get",le="+Inf"} 4',
      'lat_seconds_sum{op="get"} 3.85',
      'lat_seconds_count{op="get"} 4',
      'lat_seconds_bucket{op="put",le="0.1"} 0',
      'lat_seconds_bucket{op="put",le="0.5"} 1',
      'lat_seconds_bucket{op="put",le="1"} 1',
      'lat_seconds_bucket{op="put",le="+Inf"} 1',
      'lat_seconds_sum{op="put"} 0.5',
      'lat_seconds_count{op="put"} 1',
      "",
    ].join("\n"),
  );
});

Deno.test("unlabelled histogram and bucket validation", () => {
  const h = new Histogram({ name: "h", help: "H", buckets: [1, 2, Infinity] });
  h.observe(1.5);
  const out: string[] = [];
  h.collect(out);
  assert.deepEqual(out.slice(2), [
    'h_bucket{le="1"} 0',
    'h_bucket{le="2"} 1',
    'h_bucket{le="+Inf"} 1',
    "h_sum 1.5",
    "h_count 1",
  ]);
  assert.throws(() => new Histogram({ name: "h", help: "H", buckets: [2, 1] }), /increasing/);
  assert.throws(
    () => new Histogram({ name: "h", help: "H", labelNames: ["le"] as const }),
    /invalid label name le/,
  );
});

Deno.test("gauge set/inc/dec and collect callbacks", () => {
  const r = new Registry();
  const g = r.gauge({ name: "g", help: "G" });
  g.set(5);
  g.inc();
  g.dec(3);
  assert.equal(g.get(), 3);
  let n = 0;
  r.gauge({ name: "polled", help: "P", collect: () => ++n });
  r.gauge({
    name: "pool",
    help: "Pool",
    labelNames: ["db_name"] as const,
    collect: (gg) => gg.labels("kine").set(7),
  });
  r.gauge({
    name: "broken",
    help: "B",
    collect: () => {
      throw new Error("boom");
    },
  });
  const text = r.render();
  assert.match(text, /^g 3$/m);
  assert.match(text, /^polled 1$/m);
  assert.match(text, /^pool\{db_name="kine"\} 7$/m);
  assert.doesNotMatch(text, /broken/);
  assert.match(r.render(), /^polled 2$/m);
});

Deno.test("registry rejects duplicates and invalid names; output sorted by name", () => {
  const r = new Registry();
  r.counter({ name: "z_total", help: "z" });
  r.counter({ name: "a_total", help: "a" });
  assert.throws(() => r.counter({ name: "z_total", help: "again" }), /already registered/);
  assert.throws(() => new Counter({ name: "bad-name", help: "x" }), /invalid metric name/);
  assert.throws(
    () => new Gauge({ name: "ok", help: "x", labelNames: ["__reserved"] as const }),
    /invalid label name/,
  );
  assert.throws(
    () => new Gauge({ name: "ok", help: "x", labelNames: ["a", "a"] as const }),
    /invalid label name/,
  );
  const text = r.render();
  assert.ok(text.indexOf("a_total") < text.indexOf("z_total"));
  assert.equal(r.unregister("a_total"), true);
  assert.doesNotMatch(r.render(), /a_total/);
});

Deno.test("value and label formatting helpers", () => {
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(42), "42");
  assert.equal(formatValue(0.25), "0.25");
  assert.equal(escapeLabelValue('x"y\\z\n'), 'x\\"y\\\\z\\n');
});

Deno.test("createKineMetrics declares kine's families and process gauges", () => {
  const m = createKineMetrics(new Registry());
  assert.equal(SQL_TIME_BUCKETS.length, 14);
  assert.equal(SQL_TIME_BUCKETS[0], 0.001);
  assert.equal(SQL_TIME_BUCKETS[13], 8.192);
  m.sqlTotal.labels("get_current_sql", "").inc();
  m.sqlTime.labels("get_current_sql", "").observe(0.0015);
  m.compactTotal.labels("success").inc();
  m.insertErrorsTotal.labels("true").inc();
  m.gapFillTotal.labels("filled").inc();
  const text = m.registry.render();
  for (
    const line of [
      "# TYPE kine_sql_total counter",
      'kine_sql_total{name="get_current_sql",error_code=""} 1',
      "# TYPE kine_sql_time_seconds histogram",
      'kine_sql_time_seconds_bucket{name="get_current_sql",error_code="",le="0.001"} 0',
      'kine_sql_time_seconds_bucket{name="get_current_sql",error_code="",le="0.002"} 1',
      'kine_sql_time_seconds_bucket{name="get_current_sql",error_code="",le="8.192"} 1',
      'kine_sql_time_seconds_bucket{name="get_current_sql",error_code="",le="+Inf"} 1',
      'kine_compact_total{result="success"} 1',
      'kine_insert_errors_total{retriable="true"} 1',
      'kine_gap_fill_total{result="filled"} 1',
      "# TYPE process_resident_memory_bytes gauge",
      "# TYPE process_start_time_seconds gauge",
    ]
  ) {
    assert.ok(text.split("\n").includes(line), `missing line: ${line}`);
  }
  const rss = Number(/^process_resident_memory_bytes (\S+)$/m.exec(text)?.[1]);
  assert.ok(rss > 1_000_000, `rss ${rss}`);
  const start = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]);
  assert.ok(start > 1.5e9 && start <= Date.now() / 1000, `start ${start}`);
  assert.ok(text.split("\n").includes("# TYPE process_cpu_seconds_total counter"));
  const cpu = Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
  assert.ok(cpu > 0 && cpu < 3600, `cpu ${cpu}`);
  const fds = Number(/^process_open_fds (\S+)$/m.exec(text)?.[1]);
  assert.ok(fds >= 3 && fds < 10_000, `fds ${fds}`);
  assert.ok(Number(/^process_max_fds (\S+)$/m.exec(text)?.[1]) >= fds);
});

Deno.test("every labelled kine counter shows its known label sets at 0 before any event", () => {
  const text = createKineMetrics(new Registry()).registry.render().split("\n");
  for (
    const line of [
      'kine_compact_total{result="success"} 0',
      'kine_compact_total{result="error"} 0',
      'kine_insert_errors_total{retriable="true"} 0',
      'kine_insert_errors_total{retriable="false"} 0',
      'kine_gap_fill_total{result="filled"} 0',
      'kine_gap_fill_total{result="failed"} 0',
      'kine_gap_fill_total{result="held"} 0',
      'kine_gap_fill_total{result="skipped"} 0',
      'kine_watch_wakeups_total{source="local"} 0',
      'kine_watch_wakeups_total{source="notify"} 0',
      'kine_watch_wakeups_total{source="poll"} 0',
      'kine_role_held{role="lease_reaper"} 0',
      'kine_role_held{role="compactor"} 0',
    ]
  ) {
    assert.ok(text.includes(line), `missing line: ${line}`);
  }
});

Deno.test("parseListenAddress", () => {
  assert.deepEqual(parseListenAddress(":8080"), { hostname: "0.0.0.0", port: 8080 });
  assert.deepEqual(parseListenAddress("127.0.0.1:0"), { hostname: "127.0.0.1", port: 0 });
  assert.deepEqual(parseListenAddress("localhost:9"), { hostname: "localhost", port: 9 });
  assert.deepEqual(parseListenAddress("[::1]:80"), { hostname: "::1", port: 80 });
  for (const bad of ["8080", "h:", "h:x", "h:65536", "::1:80", "[::1:80"]) {
    assert.throws(() => parseListenAddress(bad), /invalid listen address/, bad);
  }
});

function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const rec = (msg: string, f?: Record<string, unknown>) =>
    void lines.push(`${msg} ${JSON.stringify(f ?? {})}`);
  const l = {
    lines,
    trace: rec,
    debug: rec,
    info: rec,
    warn: rec,
    error: rec,
    debugEnabled: true,
    with: () => l,
  };
  return l;
}

Deno.test("serveMetrics: real scrape on 127.0.0.1:0, 404/405, close", async () => {
  const registry = new Registry();
  const c = registry.counter({ name: "scrape_test_total", help: "T" });
  c.inc(5);
  const logger = recordingLogger();
  const srv = await serveMetrics({ address: "127.0.0.1:0", registry, logger });
  assert.match(srv.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
  assert.ok(srv.port > 0);
  assert.equal(srv.url, `http://127.0.0.1:${srv.port}/metrics`);
  assert.ok(logger.lines.some((l) => l.includes(srv.url)));
  try {
    const res = await fetch(srv.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), CONTENT_TYPE);
    const body = await res.text();
    assert.equal(body, registry.render());
    assert.match(body, /^scrape_test_total 5$/m);

    c.inc(); // values are live
    assert.match(await (await fetch(srv.url)).text(), /^scrape_test_total 6$/m);

    const head = await fetch(srv.url, { method: "HEAD" });
    assert.equal(head.status, 200);
    await head.body?.cancel();

    const nf = await fetch(srv.url.replace("/metrics", "/nope"));
    assert.equal(nf.status, 404);
    await nf.body?.cancel();

    const post = await fetch(srv.url, { method: "POST" });
    assert.equal(post.status, 405);
    await post.body?.cancel();
  } finally {
    await srv.close();
  }
  await srv.close(); // idempotent
  await assert.rejects(fetch(srv.url));
});

Deno.test("serveMetrics: the log names the address bound; bind errors name listener and address", async () => {
  const registry = new Registry();
  const logger = recordingLogger();
  const a = await serveMetrics({ address: ":0", registry, logger });
  try {
    assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    // ":0" is every interface, and the log says so (not the loopback URL alone).
    assert.ok(
      logger.lines.some((l) => l.includes(`"address":"0.0.0.0:${a.port}"`)),
      logger.lines.join("\n"),
    );
    const res = await fetch(a.url);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    // the same port cannot be bound twice
    await assert.rejects(
      serveMetrics({ address: `127.0.0.1:${a.port}`, registry }),
      new RegExp(
        `^Error: metrics listener: cannot listen on 127\\.0\\.0\\.1:${a.port}: .*in use`,
        "i",
      ),
    );
  } finally {
    await a.close();
  }
  const local = recordingLogger();
  const b = await serveMetrics({ address: "127.0.0.1:0", registry, logger: local });
  await b.close();
  assert.ok(local.lines.some((l) => l.includes(`"address":"127.0.0.1:${b.port}"`)));
  await assert.rejects(serveMetrics({ address: "nope", registry }), /invalid listen address/);
});

async function openssl(args: string[]): Promise<boolean> {
  const out = await new Deno.Command("openssl", { args, stdout: "null", stderr: "null" })
    .output();
  return out.success;
}

/** Writes a throw-away CA (`ca.pem`) and a leaf cert/key for 127.0.0.1 (`cert.pem`, `key.pem`). */
async function makeCert(dir: string): Promise<boolean> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  try {
    return await openssl(["req", "-x509", ...ec, "-days", "1", "-subj", "/CN=kine-test-ca"]
      .concat(["-keyout", `${dir}/ca.key`, "-out", `${dir}/ca.pem`])) &&
      await openssl(["req", ...ec, "-subj", "/CN=localhost"]
        .concat(["-keyout", `${dir}/key.pem`, "-out", `${dir}/leaf.csr`])) &&
      await openssl([
        "x509",
        "-req",
        "-in",
        `${dir}/leaf.csr`,
        "-CA",
        `${dir}/ca.pem`,
        "-CAkey",
        `${dir}/ca.key`,
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        `${dir}/ext.cnf`,
        "-out",
        `${dir}/cert.pem`,
      ]);
  } catch {
    return false; // openssl not installed
  }
}

Deno.test("serveMetrics: HTTPS with PEM cert/key", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    if (!(await makeCert(dir))) {
      console.warn("openssl unavailable; skipping TLS scrape test");
      return;
    }
    const certPem = await Deno.readTextFile(`${dir}/cert.pem`);
    const caPem = await Deno.readTextFile(`${dir}/ca.pem`);
    const registry = new Registry();
    registry.counter({ name: "tls_total", help: "T" }).inc();
    const client = Deno.createHttpClient({ caCerts: [caPem] });
    try {
      for (
        const [label, tls] of [
          ["pem text", { cert: certPem, key: await Deno.readTextFile(`${dir}/key.pem`) }],
        ] as const
      ) {
        await t.step(label, async () => {
          const srv = await serveMetrics({ address: "127.0.0.1:0", registry, tls });
          try {
            assert.match(srv.url, /^https:\/\/127\.0\.0\.1:\d+\/metrics$/);
            const res = await fetch(srv.url, { client });
            assert.equal(res.status, 200);
            assert.match(await res.text(), /^tls_total 1$/m);
          } finally {
            await srv.close();
          }
        });
      }
    } finally {
      client.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("per-RPC gRPC server metrics under etcd's names: unary, server and bidi streams, codes", async () => {
  const { startTestKine } = await import("./helpers/kine.ts");
  const { b } = await import("./helpers/client.ts");
  const { WatchClient } = await import("./helpers/watch.ts");
  const k = await startTestKine({ metricsBindAddress: "127.0.0.1:0" });
  try {
    await k.client.kv.put({ key: b("/m/a"), value: b("1") });
    await k.client.kv.range({ key: b("/m/a") });
    await k.client.kv.range({ key: b("/m/a") });
    await assert.rejects(k.client.kv.put({ key: b("/m/a"), value: b("2"), ignore_value: true }));
    // a RangeStream of one chunk
    await new Promise<void>((resolve, reject) => {
      const call = (k.client.raw.kv as any).RangeStream({ key: b("/m/"), range_end: b("/m0") });
      call.on("data", () => {});
      call.on("error", reject);
      call.on("end", resolve);
    });
    // a watch stream: created, one event, then cancelled by the client
    const w = new WatchClient(k.endpoint);
    const id = (await w.watch({ key: "/m/" })).watch_id;
    await k.client.kv.put({ key: b("/m/"), value: b("x") });
    await w.waitEvents(id, 1);
    await w.close();
    await new Promise((r) => setTimeout(r, 100));
    const text = await (await fetch(k.kine.metricsUrl!)).text();
    const value = (name: string, labels: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}} `));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    const kv = (type: string, method: string) =>
      `grpc_type="${type}",grpc_service="etcdserverpb.KV",grpc_method="${method}"`;
    assert.equal(value("grpc_server_started_total", kv("unary", "Range")), 2);
    assert.equal(value("grpc_server_handled_total", `${kv("unary", "Range")},grpc_code="OK"`), 2);
    assert.equal(value("grpc_server_msg_received_total", kv("unary", "Range")), 2);
    assert.equal(value("grpc_server_msg_sent_total", kv("unary", "Range")), 2);
    assert.equal(value("grpc_server_handling_seconds_count", kv("unary", "Range")), 2);
    assert.equal(value("grpc_server_started_total", kv("unary", "Put")), 3);
    assert.equal(value("grpc_server_handled_total", `${kv("unary", "Put")},grpc_code="OK"`), 2);
    assert.equal(
      value("grpc_server_handled_total", `${kv("unary", "Put")},grpc_code="InvalidArgument"`),
      1,
    );
    assert.equal(value("grpc_server_msg_sent_total", kv("unary", "Put")), 2);
    const rs = kv("server_stream", "RangeStream");
    assert.equal(value("grpc_server_started_total", rs), 1);
    assert.equal(value("grpc_server_msg_sent_total", rs), 1);
    assert.equal(value("grpc_server_handled_total", `${rs},grpc_code="OK"`), 1);
    const watch = 'grpc_type="bidi_stream",grpc_service="etcdserverpb.Watch",grpc_method="Watch"';
    assert.equal(value("grpc_server_started_total", watch), 1);
    assert.equal(value("grpc_server_msg_received_total", watch), 1);
    assert.equal(value("grpc_server_msg_sent_total", watch), 2, "created, then the event");
    // the client's close half-closes the stream first (the server ends it OK) or resets it
    const ended = ["OK", "Canceled"].map((c) =>
      value("grpc_server_handled_total", `${watch},grpc_code="${c}"`) ?? 0
    );
    assert.equal(ended[0] + ended[1], 1, `OK, Canceled: ${ended}`);
    assert.ok(text.includes("# TYPE grpc_server_handling_seconds histogram"));
    assert.ok(
      text.includes("grpc_server_handling_seconds_bucket{" + kv("unary", "Range") + ',le="0.005"}'),
    );
  } finally {
    await k.close();
  }
});
