/**
 * Authenticate under attack (issue 27): the limiter slows the attacker and
 * never locks the victim out, a flood of bad logins does not stall other
 * clients (bcrypt runs off the event loop), names and passwords are the
 * bytes sent, as in etcd 3.4, and a failed login is logged once per window
 * with its name cut short. On SQLite and PostgreSQL.
 */
import assert from "node:assert/strict";
import type * as grpc from "@grpc/grpc-js";
import { bytesToName, nameToBytes } from "../lib/auth/mod.ts";
import { createLogger } from "../lib/log/mod.ts";
import { startKine } from "../lib/mod.ts";
import { POSTGRES, SQLITE, type TestBackend } from "./helpers/backends.ts";
import { tenant } from "./helpers/auth.ts";
import { b, connect, type EtcdClient } from "./helpers/client.ts";
import { startTestKine } from "./helpers/kine.ts";
import { field, fields, RawAuth } from "./helpers/raw_auth.ts";
import { sourceProxy } from "./helpers/source_proxy.ts";

const RESOURCE_EXHAUSTED = 8;
const INVALID_ARGUMENT = 3;
const FAILED_PRECONDITION = 9;
const AUTH_FAILED = "etcdserver: authentication failed, invalid user ID or password";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The gRPC status code a call ended with; 0 when it succeeded. */
async function code(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

/** root (rootpw) and alice (apw) with read-write on /t/; auth enabled: root's token. */
const setUp = async (c: EtcdClient) => (await tenant(c)).root;

function percentile(samples: number[], p: number): number {
  const sorted = [...samples].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

const BACKENDS: TestBackend[] = [SQLITE, POSTGRES];

for (const backend of BACKENDS) {
  const name = (what: string) => `[${backend.name}] auth limits: ${what}`;

  Deno.test(
    name("the siege: root logs in while made-up names and root guesses fail from two peers"),
    async () => {
      const k = await startTestKine({ bcryptCost: 4 }, backend);
      const proxy = await sourceProxy(k.endpoint, "127.0.0.2");
      const other = connect(proxy.endpoint);
      const same = connect(k.endpoint);
      try {
        await setUp(k.client);
        let stop = false;
        const codes = { other: [] as number[], same: [] as number[] };
        let n = 0;
        // 127.0.0.2 sprays made-up names and guesses root's password, 4 at a time.
        const otherPeer = Promise.all([0, 1, 2, 3].map(async (i) => {
          while (!stop) {
            const user = i === 0 ? "root" : `nobody-${n++}`;
            codes.other.push(
              await code(other.auth.authenticate({ name: user, password: "guess" })),
            );
          }
        }));
        // root's own address sprays made-up names too, one at a time.
        const samePeer = (async () => {
          while (!stop) {
            const user = `ghost-${n++}`;
            codes.same.push(await code(same.auth.authenticate({ name: user, password: "guess" })));
          }
        })();
        await sleep(500);
        const rootLogins: number[] = [];
        for (let i = 0; i < 10; i++) {
          rootLogins.push(
            await code(k.client.auth.authenticate({ name: "root", password: "rootpw" })),
          );
          await sleep(200);
        }
        stop = true;
        await Promise.all([otherPeer, samePeer]);
        assert.deepEqual(rootLogins, Array(10).fill(0), "root logs in 10 of 10 times");
        // The attacker was answered "wrong password" and, once over its limits, refused.
        assert.ok(codes.other.includes(INVALID_ARGUMENT));
        assert.ok(codes.other.includes(RESOURCE_EXHAUSTED), "the guessing peer is throttled");
        assert.ok(codes.same.every((c) => c === INVALID_ARGUMENT || c === RESOURCE_EXHAUSTED));
        // Slowed peers make far fewer guesses than they ask for.
        assert.ok(codes.other.length > 0 && codes.same.length > 0);
      } finally {
        other.close();
        same.close();
        await proxy.close();
        await k.close();
      }
    },
  );

  Deno.test(
    name("1,000 concurrent bad logins do not stall another client's Range"),
    async () => {
      // etcd's default cost: the work a flood makes is real.
      const k = await startTestKine({ bcryptCost: 10 }, backend);
      const proxy = await sourceProxy(k.endpoint, "127.0.0.2");
      const attackers = [connect(k.endpoint), connect(proxy.endpoint)];
      const reader = connect(k.endpoint);
      try {
        const root = await setUp(k.client);
        await reader.kv.range({ key: b("/t/a") }, root);
        let flooding = true;
        const latencies: number[] = [];
        const ranges = (async () => {
          while (flooding) {
            const t0 = performance.now();
            await reader.kv.range({ key: b("/t/a") }, root);
            latencies.push(performance.now() - t0);
            await sleep(5);
          }
        })();
        const t0 = performance.now();
        const results = await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            code(attackers[i % 2].auth.authenticate({
              name: i % 3 === 0 ? "alice" : `made-up-${i}`,
              password: `wrong-${i}`,
            }))),
        );
        const floodMs = performance.now() - t0;
        flooding = false;
        await ranges;
        const p99 = percentile(latencies, 0.99);
        console.log(
          `  ${backend.name}: flood took ${floodMs.toFixed(0)} ms; other client's Range ` +
            `p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
            `max ${Math.max(...latencies).toFixed(1)} ms over ${latencies.length}`,
        );
        assert.ok(results.every((c) => c === INVALID_ARGUMENT || c === RESOURCE_EXHAUSTED));
        assert.ok(latencies.length >= 5, "the reader ran during the flood");
        // etcd's worst stall was 1.30 s with 50 bad logins (today's code: p99 1.5 s, 2 Ranges
        // served in 3 s). A generous bound: the flood's client runs in this process too, and the
        // machine is shared.
        assert.ok(p99 < 1300, `Range p99 ${p99.toFixed(0)} ms during the flood`);
      } finally {
        for (const c of [...attackers, reader]) c.close();
        await proxy.close();
        await k.close();
      }
    },
  );

  Deno.test(name("50 concurrent bad logins for one name: five are checked"), async () => {
    const k = await startTestKine({ bcryptCost: 10 }, backend);
    try {
      await setUp(k.client);
      const codes = await Promise.all(
        Array.from(
          { length: 50 },
          () => code(k.client.auth.authenticate({ name: "alice", password: "wrong" })),
        ),
      );
      // Each attempt counts as in flight before its check: the sixth finds five under way.
      assert.equal(codes.filter((c) => c === INVALID_ARGUMENT).length, 5);
      assert.equal(codes.filter((c) => c === RESOURCE_EXHAUSTED).length, 45);
    } finally {
      await k.close();
    }
  });

  Deno.test(name("a name nobody has is answered in the time a wrong password takes"), async () => {
    const k = await startTestKine({ bcryptCost: 10 }, backend);
    try {
      const root = await setUp(k.client);
      const users = Array.from({ length: 6 }, (_, i) => `user-${i}`);
      for (const user of users) await k.client.auth.userAdd({ name: user, password: "pw" }, root);
      const timed = async (user: string) => {
        const t0 = performance.now();
        assert.equal(
          await code(k.client.auth.authenticate({ name: user, password: "wrong" })),
          INVALID_ARGUMENT,
        );
        return performance.now() - t0;
      };
      const known: number[] = [];
      const unknown: number[] = [];
      for (const user of users) {
        known.push(await timed(user));
        unknown.push(await timed(`no-such-${user}`));
      }
      const [kn, un] = [percentile(known, 0.5), percentile(unknown, 0.5)];
      console.log(
        `  wrong password ${kn.toFixed(1)} ms, unknown name ${un.toFixed(1)} ms (medians)`,
      );
      // Both run one bcrypt comparison at the same cost (tens of ms); no comparison takes ~1 ms.
      assert.ok(un > kn / 2 && un < kn * 2, `unknown ${un} ms vs known ${kn} ms`);
    } finally {
      await k.close();
    }
  });

  Deno.test(name("names and passwords are bytes, as in etcd 3.4"), async () => {
    const k = await startTestKine({ bcryptCost: 4 }, backend);
    const raw = new RawAuth(k.endpoint);
    try {
      await setUp(k.client);
      const rootToken = (await k.client.auth.authenticate({ name: "root", password: "rootpw" }))
        .token;
      const bytes = (...x: number[]) => new Uint8Array(x);
      const login = (name: Uint8Array, password: Uint8Array) =>
        raw.call("Authenticate", [...field(1, name), ...field(2, password)]);
      const u1 = b("u1");
      await raw.call("UserAdd", [...field(1, u1), ...field(2, bytes(0x70, 0xff, 0x77))], rootToken);
      // Only the exact bytes log in: not another invalid byte, not U+FFFD.
      const token = fields(await login(u1, bytes(0x70, 0xff, 0x77))).get(2)?.[0];
      assert.ok(token && token.length > 0);
      for (const wrong of [bytes(0x70, 0xfe, 0x77), b("p\ufffdw")]) {
        const err = await login(u1, wrong).then(() => undefined, (e) => e);
        assert.equal(err?.code, INVALID_ARGUMENT);
        assert.equal(err?.details, AUTH_FAILED);
      }
      // A name with an invalid byte is stored and listed as sent; its neighbour is not found.
      const n1 = bytes(0x6e, 0xff);
      await raw.call("UserAdd", [...field(1, n1), ...field(2, b("pw"))], rootToken);
      const users = fields(await raw.call("UserList", [], rootToken)).get(2)!;
      assert.deepEqual(users.map((u) => [...u]), [[0x61, 0x6c, 0x69, 0x63, 0x65], [0x6e, 0xff], [
        0x72,
        0x6f,
        0x6f,
        0x74,
      ], [0x75, 0x31]]);
      await raw.call("UserGet", field(1, n1), rootToken);
      const missing = await raw.call("UserGet", field(1, bytes(0x6e, 0xfe)), rootToken).then(
        () => undefined,
        (e) => e,
      );
      assert.equal(missing?.code, FAILED_PRECONDITION);
      assert.equal(missing?.details, "etcdserver: user name not found");
      assert.ok(fields(await login(n1, b("pw"))).get(2)?.[0]?.length);
      const err = await login(bytes(0x6e, 0xfe), b("pw")).then(() => undefined, (e) => e);
      assert.equal(err?.details, AUTH_FAILED);
      // Role names too.
      await raw.call("RoleAdd", field(1, bytes(0x72, 0xff)), rootToken);
      const roles = fields(await raw.call("RoleList", [], rootToken)).get(2)!;
      // As in etcd, the root role is listed only once it was added as a role.
      assert.deepEqual(roles.map((r) => [...r]), [[0x72, 0xff], [...b("tenant")]]);
    } finally {
      raw.close();
      await k.close();
    }
  });
}

Deno.test("auth limits: every byte string survives the trip through a name string", () => {
  const cases = [
    [0x70, 0xff, 0x77],
    [0xed, 0xa0, 0x80], // an encoded UTF-16 surrogate: invalid UTF-8
    [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
    [0xc0, 0xaf], // overlong
    [0xe2, 0x82], // cut short
    [...new TextEncoder().encode("root\u{1F600}é")],
  ].map((x) => new Uint8Array(x));
  for (let i = 0; i < 2000; i++) {
    cases.push(crypto.getRandomValues(new Uint8Array(1 + (i % 24))));
  }
  // A round trip for every byte string also means no two of them meet as one name.
  for (const bytes of cases) assert.deepEqual(nameToBytes(bytesToName(bytes)), bytes);
});

Deno.test("auth limits: a failed login is logged once per window, its name cut to 64 bytes", async () => {
  const lines: string[] = [];
  const logger = createLogger({
    stderr: {
      writeSync(p: Uint8Array) {
        lines.push(new TextDecoder().decode(p));
        return p.length;
      },
    },
  });
  const dir = await Deno.makeTempDir({ prefix: "kine-limit-" });
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    endpoint: `sqlite://${dir}/state.db`,
    metricsBindAddress: "0",
    bcryptCost: 4,
  }, logger);
  const c = connect(kine.url.replace(/^https?:\/\//, ""));
  try {
    await setUp(c);
    const long = "x".repeat(100_000);
    const wrong = "not-the-password-9f3a";
    const codes: number[] = [];
    for (let i = 0; i < 12; i++) {
      codes.push(await code(c.auth.authenticate({ name: long, password: wrong })));
    }
    // Five failures, then the pair is locked: refused without a check.
    assert.deepEqual(codes.slice(0, 5), Array(5).fill(INVALID_ARGUMENT));
    assert.ok(codes.slice(5).every((x) => x === RESOURCE_EXHAUSTED));
    const failed = lines.filter((l) => l.includes("authentication failed"));
    assert.equal(failed.length, 1, failed.join(""));
    assert.ok(failed[0].includes("x".repeat(64)) && !failed[0].includes("x".repeat(65)));
    assert.ok(failed[0].length < 400, `a ${failed[0].length}-character log line`);
    assert.doesNotMatch(lines.join(""), /too many|refused/);
    assert.doesNotMatch(lines.join(""), new RegExp(wrong));
    // The limit is per (peer, name): alice and root still log in from this same peer.
    await c.auth.authenticate({ name: "alice", password: "apw" });
    await c.auth.authenticate({ name: "root", password: "rootpw" });
    // Five wrong passwords lock alice from this peer, even with the right one, for a second.
    for (let i = 0; i < 5; i++) {
      assert.equal(
        await code(c.auth.authenticate({ name: "alice", password: wrong })),
        INVALID_ARGUMENT,
      );
    }
    assert.equal(
      await code(c.auth.authenticate({ name: "alice", password: "apw" })),
      RESOURCE_EXHAUSTED,
    );
    await sleep(1200);
    await c.auth.authenticate({ name: "alice", password: "apw" });
    assert.match(lines.join(""), /authentication failed.*user=alice/);
    assert.doesNotMatch(lines.join(""), /apw|rootpw/);
  } finally {
    c.close();
    await kine.close();
    await Deno.remove(dir, { recursive: true });
  }
});
