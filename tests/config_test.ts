import assert from "node:assert/strict";
import {
  defaultConfig,
  FLAGS,
  formatDuration,
  GIT_COMMIT,
  type KineConfig,
  parseArgs,
  parseDuration,
  parseDurationNanos,
  type ParseResult,
  validateConfig,
  VERSION,
} from "../lib/config/mod.ts";

function cfg(argv: string[], env: Record<string, string | undefined> = {}): KineConfig {
  const r = parseArgs(argv, env);
  if (r.kind !== "config") assert.fail(`expected config, got ${JSON.stringify(r)}`);
  return r.config;
}

function err(argv: string[], env: Record<string, string | undefined> = {}): string {
  const r = parseArgs(argv, env);
  if (r.kind !== "error") assert.fail(`expected error, got ${JSON.stringify(r)}`);
  assert.ok(!r.message.includes("\n"), `error must be one line: ${r.message}`);
  return r.message;
}

Deno.test("defaults: upstream values except the loopback listen address", () => {
  const c = cfg([]);
  assert.deepEqual(c, defaultConfig());
  assert.equal(c.listenAddress, "127.0.0.1:2379");
  assert.equal(c.endpoint, "");
  assert.equal(c.logFormat, "plain");
  assert.equal(c.metricsBindAddress, "127.0.0.1:8080"); // loopback, as the gRPC listener
  assert.equal(c.datastoreMaxIdleConnections, 20);
  assert.equal(c.datastoreMaxOpenConnections, 0);
  assert.equal(c.datastoreConnectionMaxLifetime, 0);
  assert.equal(c.datastoreConnectionMaxIdleTime, 120_000);
  assert.equal(c.slowSqlThreshold, 1_000);
  assert.equal(c.slowSqlWarningThreshold, 5_000);
  assert.equal(c.watchProgressNotifyInterval, 5_000);
  assert.equal(c.emulatedEtcdVersion, "3.6.11");
  assert.equal(c.compactInterval, 0);
  assert.equal(c.compactIntervalJitter, 0);
  assert.equal(c.compactTimeout, 5_000);
  assert.equal(c.compactMinRetain, 1000);
  assert.equal(c.quotaBackendBytes, 2 * 1024 ** 3); // etcd's default
  assert.equal(c.compactBatchSize, 1000);
  assert.equal(c.pollBatchSize, 500);
  assert.equal(c.maxTxnOps, 128); // etcd's defaults
  assert.equal(c.maxRequestBytes, 1536 * 1024);
  assert.equal(c.identityProvider, "");
  assert.equal(c.debug, false);
  assert.equal(c.skipVerify, false);
  assert.equal(c.metricsEnableProfiling, false);
  assert.equal(c.metricsIgnoreTlsConfig, false);
  assert.equal(validateConfig(c), undefined);
});

Deno.test("defaultConfig returns an independent object each time", () => {
  const a = defaultConfig();
  a.endpoint = "memory://";
  assert.equal(defaultConfig().endpoint, "");
});

Deno.test("every KineConfig key is reachable through exactly one flag", () => {
  const keys = FLAGS.map((f) => f.key).sort();
  assert.deepEqual(keys, Object.keys(defaultConfig()).sort());
  assert.equal(new Set(FLAGS.map((f) => f.env)).size, FLAGS.length);
  for (const f of FLAGS) assert.match(f.env, /^KINE_[A-Z_]+$/);
});

Deno.test("flag syntaxes: --f v, --f=v, -f v, -f=v", () => {
  assert.equal(cfg(["--endpoint", "memory://"]).endpoint, "memory://");
  assert.equal(cfg(["--endpoint=memory://"]).endpoint, "memory://");
  assert.equal(cfg(["-endpoint", "memory://"]).endpoint, "memory://");
  assert.equal(cfg(["-endpoint=memory://"]).endpoint, "memory://");
  // value containing "=" is kept whole
  assert.equal(
    cfg(["--endpoint=postgres://u:p@h/db?sslmode=disable"]).endpoint,
    "postgres://u:p@h/db?sslmode=disable",
  );
  // a value starting with a dash is consumed as the value
  assert.equal(cfg(["--compact-interval", "-5m"]).compactInterval, -300_000);
  // last occurrence wins
  assert.equal(cfg(["--poll-batch-size", "10", "--poll-batch-size=20"]).pollBatchSize, 20);
  // "--" ends flag parsing
  assert.equal(cfg(["--debug", "--"]).debug, true);
});

Deno.test("boolean flags", () => {
  assert.equal(cfg(["--debug"]).debug, true);
  assert.equal(cfg(["-debug"]).debug, true);
  assert.equal(cfg(["--debug=true"]).debug, true);
  assert.equal(cfg(["--debug=false"]).debug, false);
  assert.equal(cfg(["--debug=1"]).debug, true);
  assert.equal(cfg(["--debug=F"]).debug, false);
  assert.equal(cfg(["--skip-verify", "--metrics-enable-profiling"]).skipVerify, true);
  assert.equal(cfg(["--metrics-ignore-tls-config"]).metricsIgnoreTlsConfig, true);
  // like Go's flag package, booleans never consume the next argument
  assert.equal(err(["--debug", "false"]), "kine does not accept positional arguments, only flags");
  assert.equal(
    err(["--debug=maybe"]),
    'invalid value "maybe" for flag --debug: expected a boolean (true or false)',
  );
});

Deno.test("typed values: ints and durations", () => {
  const c = cfg([
    "--datastore-max-open-connections=7",
    "--datastore-connection-max-lifetime=1h",
    "--datastore-connection-max-idle-time=90s",
    "--slow-sql-threshold=250ms",
    "--slow-sql-warning-threshold=2.5s",
    "--watch-progress-notify-interval=10ns",
    "--compact-interval=5m",
    "--compact-interval-jitter=100",
    "--compact-timeout=1m30s",
    "--compact-min-retain=0",
    "--compact-batch-size=100",
    "--poll-batch-size=1",
    "--log-format=json",
    "--emulated-etcd-version=3.5.0",
    "--identity-provider=aws",
  ]);
  assert.equal(c.datastoreMaxOpenConnections, 7);
  assert.equal(c.datastoreConnectionMaxLifetime, 3_600_000);
  assert.equal(c.datastoreConnectionMaxIdleTime, 90_000);
  assert.equal(c.slowSqlThreshold, 250);
  assert.equal(c.slowSqlWarningThreshold, 2_500);
  assert.equal(c.watchProgressNotifyInterval, 0.00001);
  assert.equal(c.compactInterval, 300_000);
  assert.equal(c.compactIntervalJitter, 100);
  assert.equal(c.compactTimeout, 90_000);
  assert.equal(c.compactMinRetain, 0);
  assert.equal(c.compactBatchSize, 100);
  assert.equal(c.pollBatchSize, 1);
  assert.equal(c.logFormat, "json");
  assert.equal(c.emulatedEtcdVersion, "3.5.0");
  assert.equal(c.identityProvider, "aws");
});

Deno.test("env sets values and flags override env", () => {
  const env = {
    KINE_ENDPOINT: "memory://",
    KINE_DEBUG: "true",
    KINE_COMPACT_INTERVAL: "10m",
    KINE_POLL_BATCH_SIZE: "42",
    KINE_LOG_FORMAT: "json",
  };
  const c = cfg([], env);
  assert.equal(c.endpoint, "memory://");
  assert.equal(c.debug, true);
  assert.equal(c.compactInterval, 600_000);
  assert.equal(c.pollBatchSize, 42);
  assert.equal(c.logFormat, "json");

  const o = cfg([
    "--endpoint=sqlite://x.db",
    "--debug=false",
    "--compact-interval=0",
    "--poll-batch-size=7",
    "--log-format=plain",
  ], env);
  assert.equal(o.endpoint, "sqlite://x.db");
  assert.equal(o.debug, false);
  assert.equal(o.compactInterval, 0);
  assert.equal(o.pollBatchSize, 7);
  assert.equal(o.logFormat, "plain");
});

Deno.test("every flag's env var is honoured", () => {
  const samples: Record<string, [string, unknown]> = {
    string: ["custom", "custom"],
    bool: ["true", true],
    int: ["100", 100],
    duration: ["3s", 3000],
  };
  // Listener TLS is valid only as a whole set: its flags are tested within one.
  const tlsSet: Record<string, string> = {
    KINE_SERVER_CERT_FILE: "c.pem",
    KINE_SERVER_KEY_FILE: "k.pem",
    KINE_TRUSTED_CA_FILE: "ca.pem",
  };
  for (const f of FLAGS) {
    let [raw, want] = samples[f.kind];
    if (f.key === "logFormat") [raw, want] = ["json", "json"];
    if (f.key === "identityProvider") [raw, want] = ["aws", "aws"];
    const inSet = f.env in tlsSet || f.key === "clientCertAuth";
    const env = inSet ? { ...tlsSet, [f.env]: raw } : { [f.env]: raw };
    const c = cfg([], env) as unknown as Record<string, unknown>;
    assert.equal(c[f.key], want, `${f.env} → ${f.key}`);
    // and the flag beats it
    const d = defaultConfig() as unknown as Record<string, unknown>;
    const [flagRaw, flagWant] = f.kind === "bool"
      ? [`--${f.name}=false`, false]
      : inSet
      ? [`--${f.name}=other.pem`, "other.pem"]
      : [`--${f.name}=${f.default}`, d[f.key]];
    const o = cfg([flagRaw], env) as unknown as Record<string, unknown>;
    assert.equal(o[f.key], flagWant, `--${f.name} overrides ${f.env}`);
  }
});

Deno.test("empty values: listen address, metrics address, empty non-string env", () => {
  assert.equal(cfg(["--listen-address="]).listenAddress, "unix://kine.sock");
  assert.equal(cfg(["--listen-address", ""]).listenAddress, "unix://kine.sock");
  assert.equal(cfg([], { KINE_LISTEN_ADDRESS: "" }).listenAddress, "unix://kine.sock");
  assert.equal(cfg(["--listen-address=unix:///tmp/k.sock"]).listenAddress, "unix:///tmp/k.sock");
  assert.equal(cfg(["--metrics-bind-address="]).metricsBindAddress, "127.0.0.1:8080");
  assert.equal(cfg(["--metrics-bind-address=:8080"]).metricsBindAddress, ":8080");
  assert.equal(cfg(["--metrics-bind-address=0"]).metricsBindAddress, "0");
  // empty env var for a non-string flag is ignored (urfave/cli behaviour)
  assert.equal(cfg([], { KINE_POLL_BATCH_SIZE: "" }).pollBatchSize, 500);
  assert.equal(cfg([], { KINE_DEBUG: "" }).debug, false);
  // undefined entries are ignored
  assert.equal(cfg([], { KINE_ENDPOINT: undefined }).endpoint, "");
});

Deno.test("datastore pool semantics", () => {
  assert.equal(cfg(["--datastore-max-idle-connections=0"]).datastoreMaxIdleConnections, 20);
  assert.equal(cfg(["--datastore-max-idle-connections=-1"]).datastoreMaxIdleConnections, 0);
  assert.equal(cfg(["--datastore-max-idle-connections=5"]).datastoreMaxIdleConnections, 5);
  assert.equal(cfg(["--datastore-max-open-connections=-3"]).datastoreMaxOpenConnections, -3);
});

Deno.test("help", () => {
  for (const a of ["--help", "-h", "-help", "--h"]) {
    const r = parseArgs([a], {});
    assert.equal(r.kind, "help", a);
  }
  const r = parseArgs(["--help"], {}) as Extract<ParseResult, { kind: "help" }>;
  assert.equal(
    r.text.split("\n")[0],
    "kine - Minimal etcd v3 API to support custom Kubernetes storage engines",
  );
  for (const f of FLAGS) {
    const line = r.text.split("\n").find((l) => l.trimStart().startsWith(`--${f.name} `));
    assert.ok(line, `help lists --${f.name}`);
    assert.ok(line.includes(`[$${f.env}]`), `help lists ${f.env}`);
    assert.ok(line.includes("(default: "), `help shows default of --${f.name}`);
  }
  assert.match(r.text, /--listen-address value .*\(default: "127\.0\.0\.1:2379"\)/);
  assert.match(r.text, /--datastore-connection-max-idle-time value .*\(default: 2m\)/);
  assert.match(r.text, /--version/);
  // help wins over later problems, like Go's sequential parsing
  assert.equal(parseArgs(["--help", "--bogus"], {}).kind, "help");
});

Deno.test("version", () => {
  assert.equal(VERSION, "dev");
  assert.equal(GIT_COMMIT, "HEAD");
  for (const a of ["--version", "-version", "-v"]) {
    assert.deepEqual(parseArgs([a], {}), { kind: "version", text: "dev (HEAD)" });
  }
});

Deno.test("errors: positional arguments and unknown flags", () => {
  const pos = "kine does not accept positional arguments, only flags";
  assert.equal(err(["serve"]), pos);
  assert.equal(err(["--debug", "extra"]), pos);
  assert.equal(err(["-"]), pos);
  assert.equal(err(["--", "x"]), pos);
  assert.equal(err(["--nope"]), "flag provided but not defined: -nope");
  assert.equal(err(["-nope=1"]), "flag provided but not defined: -nope");
  assert.equal(err(["--peer-bind-address=x"]), "flag provided but not defined: -peer-bind-address");
  assert.equal(err(["--s3-bucket", "b"]), "flag provided but not defined: -s3-bucket");
  assert.equal(err(["---x"]), "bad flag syntax: ---x");
  assert.equal(err(["--=x"]), "bad flag syntax: --=x");
  assert.equal(err(["--endpoint"]), "flag needs an argument: -endpoint");
});

Deno.test("errors: bad values name the flag", () => {
  assert.equal(
    err(["--compact-interval", "abc"]),
    'invalid value "abc" for flag --compact-interval: time: invalid duration "abc"',
  );
  assert.equal(
    err(["--compact-interval=5"]),
    'invalid value "5" for flag --compact-interval: time: missing unit in duration "5"',
  );
  assert.equal(
    err(["--compact-timeout=1d"]),
    'invalid value "1d" for flag --compact-timeout: time: unknown unit "d" in duration "1d"',
  );
  assert.equal(
    err(["--poll-batch-size=ten"]),
    'invalid value "ten" for flag --poll-batch-size: expected an integer',
  );
  assert.equal(
    err(["--poll-batch-size=1.5"]),
    'invalid value "1.5" for flag --poll-batch-size: expected an integer',
  );
  assert.equal(
    err(["--compact-min-retain=99999999999999999999"]),
    'invalid value "99999999999999999999" for flag --compact-min-retain: value out of range',
  );
  assert.equal(
    err([], { KINE_COMPACT_INTERVAL: "abc" }),
    'invalid value "abc" for flag --compact-interval (from $KINE_COMPACT_INTERVAL): ' +
      'time: invalid duration "abc"',
  );
  assert.equal(
    err([], { KINE_DEBUG: "yes" }),
    'invalid value "yes" for flag --debug (from $KINE_DEBUG): expected a boolean (true or false)',
  );
  // a valid flag value hides a broken env value for the same flag
  assert.equal(cfg(["--debug"], { KINE_DEBUG: "yes" }).debug, true);
});

Deno.test("errors: validation", () => {
  assert.equal(err(["--log-format=text"]), "invalid log format: text");
  assert.equal(err([], { KINE_LOG_FORMAT: "JSON" }), "invalid log format: JSON");
  assert.match(err(["--watch-progress-notify-interval=0"]), /--watch-progress-notify-interval/);
  assert.equal(
    err(["--watch-progress-notify-interval=9ns"]),
    'invalid value "9ns" for flag --watch-progress-notify-interval: must be at least 10ns',
  );
  assert.match(err(["--watch-progress-notify-interval=-1s"]), /--watch-progress-notify-interval/);
  assert.equal(
    err(["--compact-interval-jitter=101"]),
    'invalid value "101" for flag --compact-interval-jitter: must be between 0 and 100',
  );
  assert.match(err(["--compact-interval-jitter=-1"]), /--compact-interval-jitter/);
  assert.equal(cfg(["--compact-interval-jitter=0"]).compactIntervalJitter, 0);
  assert.equal(
    err(["--compact-batch-size=99"]),
    "compact-batch-size 99 too small: must be at least 100",
  );
  assert.equal(
    err(["--compact-batch-size=-5"]),
    "compact-batch-size -5 too small: must be at least 100",
  );
  assert.equal(
    err(["--compact-min-retain=-1"]),
    'invalid value "-1" for flag --compact-min-retain: must not be negative',
  );
  assert.equal(
    err(["--quota-backend-bytes=-1"]),
    'invalid value "-1" for flag --quota-backend-bytes: must not be negative',
  );
  assert.equal(
    err(["--poll-batch-size=0"]),
    'invalid value "0" for flag --poll-batch-size: must be at least 1',
  );
  assert.equal(
    err(["--compact-timeout=0"]),
    'invalid value "0s" for flag --compact-timeout: must be positive',
  );
});

Deno.test("errors: listener TLS is configured as a whole or refused, naming the flags", () => {
  const cert = ["--server-cert-file", "/c.pem"];
  const key = ["--server-key-file", "/k.pem"];
  const ca = ["--trusted-ca-file", "/ca.pem"];
  assert.equal(
    err(cert),
    "--server-cert-file is set without --server-key-file: listener TLS needs both",
  );
  assert.equal(
    err(key),
    "--server-key-file is set without --server-cert-file: listener TLS needs both",
  );
  assert.equal(err([...key], { KINE_SERVER_CERT_FILE: "" }), err(key));
  for (const half of [ca, [...ca, ...cert], [...ca, ...key]]) {
    assert.match(err(half), /^--(trusted-ca-file|server-cert-file|server-key-file) is set without/);
  }
  assert.match(
    err(ca),
    /^--trusted-ca-file is set without --server-cert-file and --server-key-file/,
  );
  assert.match(
    err([...cert, ...key, "--client-cert-auth"]),
    /^--client-cert-auth is set without --trusted-ca-file/,
  );
  assert.match(err(["--client-cert-auth"]), /--client-cert-auth/);
  // Complete sets are accepted; parsing reads no file.
  assert.equal(cfg([...cert, ...key]).serverCertFile, "/c.pem");
  assert.equal(cfg([...cert, ...key, ...ca, "--client-cert-auth"]).clientCertAuth, true);
});

Deno.test("validateConfig on hand-built configs", () => {
  const c = defaultConfig();
  assert.equal(validateConfig(c), undefined);
  assert.equal(
    validateConfig({ ...c, logFormat: "xml" as "json" }),
    "invalid log format: xml",
  );
  assert.match(validateConfig({ ...c, compactIntervalJitter: 2.5 }) ?? "", /jitter/);
  assert.match(validateConfig({ ...c, watchProgressNotifyInterval: NaN }) ?? "", /watch/);
});

Deno.test("parseArgs never throws on odd input", () => {
  const inputs = [
    [""],
    ["-"],
    ["--"],
    ["="],
    ["-="],
    ["--debug=="],
    ["--endpoint="],
    ["--compact-interval="],
    ["--\u00b5"],
    ["--compact-interval=\u00b5s"],
    ["--compact-interval", "\uffff"],
  ];
  for (const argv of inputs) {
    const r = parseArgs(argv, {});
    assert.ok(["config", "error"].includes(r.kind), JSON.stringify(argv));
  }
});

// Cases from Go's time.ParseDuration tests (nanoseconds).
const GO_VALID: [string, bigint][] = [
  ["0", 0n],
  ["5s", 5_000_000_000n],
  ["30s", 30_000_000_000n],
  ["1478s", 1_478_000_000_000n],
  ["-5s", -5_000_000_000n],
  ["+5s", 5_000_000_000n],
  ["-0", 0n],
  ["+0", 0n],
  ["5.0s", 5_000_000_000n],
  ["5.6s", 5_600_000_000n],
  ["5.s", 5_000_000_000n],
  [".5s", 500_000_000n],
  ["1.0s", 1_000_000_000n],
  ["1.00s", 1_000_000_000n],
  ["1.004s", 1_004_000_000n],
  ["1.0040s", 1_004_000_000n],
  ["100.00100s", 100_001_000_000n],
  ["10ns", 10n],
  ["11us", 11_000n],
  ["12\u00b5s", 12_000n],
  ["12\u03bcs", 12_000n],
  ["13ms", 13_000_000n],
  ["14s", 14_000_000_000n],
  ["15m", 900_000_000_000n],
  ["16h", 57_600_000_000_000n],
  ["3h30m", 12_600_000_000_000n],
  ["10.5s4m", 250_500_000_000n],
  ["-2m3.4s", -123_400_000_000n],
  ["1h2m3s4ms5us6ns", 3_723_004_005_006n],
  ["39h9m14.425s", 140_954_425_000_000n],
  ["52763797000ns", 52_763_797_000n],
  ["0.3333333333333333333h", 1_200_000_000_000n],
  ["9007199254740993ns", 9_007_199_254_740_993n],
  ["9223372036854775807ns", 9_223_372_036_854_775_807n],
  ["9223372036854775.807us", 9_223_372_036_854_775_807n],
  ["9223372036s854ms775us807ns", 9_223_372_036_854_775_807n],
  ["-9223372036854775808ns", -9_223_372_036_854_775_808n],
  ["-9223372036854775.808us", -9_223_372_036_854_775_808n],
  ["0.100000000000000000000h", 360_000_000_000n],
  ["0.830103483285477580700h", 2_988_372_539_827n],
];

const GO_INVALID = [
  "",
  "3",
  "-",
  "s",
  ".",
  "-.",
  ".s",
  "+.s",
  "1d",
  "\x85\x85",
  "\xffff",
  "hello \xffff world",
  "9223372036854775810ns",
  "9223372036854775808ns",
  "-9223372036854775809ns",
  "9223372036854776us",
  "3000000h",
  "9223372036854775.808us",
  "9223372036854ms775us808ns",
  "1h-5m",
  " 1s",
  "1s ",
  "1S",
];

Deno.test("parseDurationNanos: Go's valid cases", () => {
  for (const [s, want] of GO_VALID) assert.equal(parseDurationNanos(s), want, s);
});

Deno.test("parseDurationNanos: Go's invalid cases throw", () => {
  for (const s of GO_INVALID) assert.throws(() => parseDurationNanos(s), Error, JSON.stringify(s));
});

Deno.test("parseDuration returns (fractional) milliseconds with Go error texts", () => {
  assert.equal(parseDuration("300ms"), 300);
  assert.equal(parseDuration("-1.5h"), -5_400_000);
  assert.equal(parseDuration("2h45m"), 9_900_000);
  assert.equal(parseDuration("1us"), 0.001);
  assert.equal(parseDuration("1\u00b5s"), 0.001);
  assert.equal(parseDuration("10ns"), 0.00001);
  assert.equal(parseDuration("1.5ns"), 0.000001); // Go truncates sub-nanosecond fractions
  assert.equal(parseDuration("0"), 0);
  assert.throws(() => parseDuration("1"), { message: 'time: missing unit in duration "1"' });
  assert.throws(() => parseDuration("abc"), { message: 'time: invalid duration "abc"' });
  assert.throws(() => parseDuration(""), { message: 'time: invalid duration ""' });
  assert.throws(() => parseDuration("2x"), { message: 'time: unknown unit "x" in duration "2x"' });
  assert.throws(
    () => parseDuration("1.5mss"),
    { message: 'time: unknown unit "mss" in duration "1.5mss"' },
  );
});

Deno.test("formatDuration matches Go's Duration.String", () => {
  const cases: [number, string][] = [
    [0, "0s"],
    [0.000001, "1ns"],
    [0.0011, "1.1\u00b5s"],
    [2.2, "2.2ms"],
    [300, "300ms"],
    [1000, "1s"],
    [1500, "1.5s"],
    [120_000, "2m0s"],
    [90_500, "1m30.5s"],
    [3_600_000, "1h0m0s"],
    [9_900_000, "2h45m0s"],
    [-5_400_000, "-1h30m0s"],
    [-0.00001, "-10ns"],
  ];
  for (const [ms, want] of cases) assert.equal(formatDuration(ms), want, `${ms}`);
  for (const s of ["5s", "2m0s", "1h2m3.004005006s", "999ms", "10ns", "-2m3.4s"]) {
    assert.equal(formatDuration(parseDuration(s)), s);
  }
});
