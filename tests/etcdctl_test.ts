/**
 * Real etcdctl (Debian's etcd-client, API v3.4) against an in-process kine: the commands
 * operators and scripts actually type, with their printed output asserted exactly.
 * Spec §2.3–§2.11 and §13 items 16, 22, 39.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { DatabaseSync } from "node:sqlite";
import { connect } from "./helpers/client.ts";
import { etcdctl, type EtcdctlResult } from "./helpers/etcdctl.ts";
import { type TestKine, withKine } from "./helpers/kine.ts";
import { conformance } from "./helpers/conformance.ts";

const FUTURE = "etcdserver: mvcc: required revision is a future revision";
const COMPACTED = "etcdserver: mvcc: required revision has been compacted";
const MULTI_KEY = "multi-key transactions are not supported on the NATS backend";

/** Runs etcdctl and requires exit status 0; returns stdout. */
async function ok(k: TestKine, args: string[], stdin?: string): Promise<string> {
  const r = await etcdctl(k.endpoint, args, { stdin });
  assert.equal(r.code, 0, `etcdctl ${args.join(" ")} failed: ${r.stderr}`);
  return r.stdout;
}

/** Runs etcdctl and requires it to fail; returns the whole result. */
async function fails(k: TestKine, args: string[], stdin?: string): Promise<EtcdctlResult> {
  const r = await etcdctl(k.endpoint, args, { stdin });
  assert.notEqual(r.code, 0, `etcdctl ${args.join(" ")} unexpectedly succeeded: ${r.stdout}`);
  return r;
}

/** `etcdctl … -w json`, parsed. */
async function json(k: TestKine, args: string[]): Promise<any> {
  return JSON.parse(await ok(k, [...args, "-w", "json"]));
}

const unbase64 = (v: string | undefined): string =>
  v === undefined ? "" : new TextDecoder().decode(Uint8Array.from(atob(v), (c) => c.charCodeAt(0)));

/** Lines of etcdctl's simple output joined back, for exact comparisons. */
const lines = (...l: string[]): string => l.map((x) => `${x}\n`).join("");

conformance("etcdctl put, put --prev-kv and get of a single key", async (k) => {
  assert.equal(await ok(k, ["put", "/a", "1"]), "OK\n");
  assert.equal(await ok(k, ["put", "/a", "2", "--prev-kv"]), lines("OK", "/a", "1"));
  // --prev-kv on a new key prints no previous pair
  assert.equal(await ok(k, ["put", "/b", "x", "--prev-kv"]), "OK\n");
  assert.equal(await ok(k, ["get", "/a"]), lines("/a", "2"));
  assert.equal(await ok(k, ["get", "/a", "--print-value-only"]), lines("2"));
  // a missing key prints nothing and still exits 0
  assert.equal(await ok(k, ["get", "/missing"]), "");
  // a single-key get is exact: /ns/foo never returns /ns/foobar, /ns/ never its children
  await ok(k, ["put", "/ns/foobar", "x"]);
  assert.equal(await ok(k, ["get", "/ns/foo"]), "");
  assert.equal(await ok(k, ["get", "/ns/"]), "");
  // values with spaces and newlines round-trip
  await ok(k, ["put", "/sp", "hello world"]);
  assert.equal(await ok(k, ["get", "/sp", "--print-value-only"]), lines("hello world"));
});

conformance("etcdctl get --prefix, --from-key, --limit and --keys-only", async (k) => {
  for (const [key, value] of [["/p/1", "a"], ["/p/2", "b"], ["/p/3", "c"], ["/q", "x"]]) {
    await ok(k, ["put", key, value]);
  }
  assert.equal(
    await ok(k, ["get", "--prefix", "/p/"]),
    lines("/p/1", "a", "/p/2", "b", "/p/3", "c"),
  );
  // --from-key: every key >= /p/2, including /registry/health which sorts after /q
  assert.equal(
    await ok(k, ["get", "--from-key", "/p/2"]),
    lines("/p/2", "b", "/p/3", "c", "/q", "x", "/registry/health", '{"health":"true"}'),
  );
  assert.equal(
    await ok(k, ["get", "--prefix", "/p/", "--limit", "2"]),
    lines("/p/1", "a", "/p/2", "b"),
  );
  const page = await json(k, ["get", "--prefix", "/p/", "--limit", "2"]);
  assert.equal(page.more, true);
  assert.equal(page.count, 3);
  assert.equal(page.kvs.length, 2);
  const last = await json(k, ["get", "--prefix", "/p/", "--limit", "3"]);
  assert.equal(last.more, undefined); // false is omitted by etcdctl's JSON
  assert.equal(last.count, 3);
  // a limit on a single-key get is fine
  assert.equal(await ok(k, ["get", "/p/1", "--limit", "5"]), lines("/p/1", "a"));
  // --keys-only prints each key followed by an empty value line
  assert.equal(
    await ok(k, ["get", "--prefix", "/p/", "--keys-only"]),
    lines("/p/1", "", "/p/2", "", "/p/3", ""),
  );
  const keys = await json(k, ["get", "--prefix", "/p/", "--keys-only"]);
  assert.deepEqual(keys.kvs.map((kv: any) => unbase64(kv.key)), ["/p/1", "/p/2", "/p/3"]);
  for (const kv of keys.kvs) {
    assert.equal(kv.value, undefined, "keys-only must not carry values");
    assert.ok(kv.mod_revision > 2 && kv.create_revision === kv.mod_revision);
  }
  assert.equal(await ok(k, ["get", "--prefix", "/nothing/"]), "");
});

conformance("etcdctl get --rev reads history; a future revision is an error", async (k) => {
  await ok(k, ["put", "/r", "v1"]); // rev 3
  await ok(k, ["put", "/r", "v2"]); // rev 4
  await ok(k, ["put", "/other", "o"]); // rev 5
  await ok(k, ["del", "/r"]); // rev 6
  assert.equal(await ok(k, ["get", "/r", "--rev=2"]), "");
  assert.equal(await ok(k, ["get", "/r", "--rev=3"]), lines("/r", "v1"));
  assert.equal(await ok(k, ["get", "/r", "--rev=4"]), lines("/r", "v2"));
  assert.equal(await ok(k, ["get", "/r", "--rev=5"]), lines("/r", "v2"));
  assert.equal(await ok(k, ["get", "/r", "--rev=6"]), "");
  assert.equal(await ok(k, ["get", "/r"]), "");
  assert.equal(
    await ok(k, ["get", "--prefix", "/", "--rev=4", "--keys-only"]),
    lines("/r", "", "/registry/health", ""),
  );
  // the current revision itself is fine, the next one is in the future
  assert.equal(await ok(k, ["get", "/other", "--rev=6"]), lines("/other", "o"));
  for (const args of [["get", "/r", "--rev=7"], ["get", "--prefix", "/", "--rev=100"]]) {
    const r = await fails(k, args);
    assert.match(r.stderr, /Error: etcdserver: mvcc: required revision is a future revision\n$/);
    assert.ok(r.stderr.includes(FUTURE));
  }
});

conformance("etcdctl -w json: header, create/mod revisions and versions 1, 2, 3", async (k) => {
  const seen: any[] = [];
  for (const value of ["a", "b", "c"]) {
    await ok(k, ["put", "/v", value]);
    seen.push(await json(k, ["get", "/v"]));
  }
  seen.forEach((r, i) => {
    assert.equal(r.header.revision, 3 + i);
    assert.equal(r.count, 1);
    assert.equal(r.kvs.length, 1);
    const kv = r.kvs[0];
    assert.equal(unbase64(kv.key), "/v");
    assert.equal(unbase64(kv.value), ["a", "b", "c"][i]);
    assert.equal(kv.create_revision, 3);
    assert.equal(kv.mod_revision, 3 + i);
    assert.equal(kv.version, 1 + i);
    assert.equal(kv.lease, undefined);
  });
  // reads never advance the revision
  assert.equal((await json(k, ["get", "/v"])).header.revision, 5);
  // after a delete the key starts over at version 1 with a new create revision
  await ok(k, ["del", "/v"]);
  await ok(k, ["put", "/v", "d"]);
  const again = (await json(k, ["get", "/v"])).kvs[0];
  assert.deepEqual(
    [again.create_revision, again.mod_revision, again.version],
    [7, 7, 1],
  );
  // a missing key: empty kvs, count 0, header still the current revision
  const missing = await json(k, ["get", "/missing"]);
  assert.equal(missing.header.revision, 7);
  assert.equal(missing.kvs, undefined);
  assert.equal(missing.count, undefined);
});

conformance("etcdctl get --order/--sort-by sorts by modification, key and version", async (k) => {
  await ok(k, ["put", "/s/a", "1"]); // 3
  await ok(k, ["put", "/s/b", "2"]); // 4
  await ok(k, ["put", "/s/c", "3"]); // 5
  await ok(k, ["put", "/s/a", "4"]); // 6: /s/a is now the newest, version 2
  const keys = async (...extra: string[]) =>
    (await ok(k, ["get", "--prefix", "/s/", "--keys-only", ...extra])).split("\n").filter(
      Boolean,
    );
  assert.deepEqual(await keys("--order", "DESCEND", "--sort-by", "MODIFY"), [
    "/s/a",
    "/s/c",
    "/s/b",
  ]);
  assert.deepEqual(await keys("--order", "ASCEND", "--sort-by", "MODIFY"), [
    "/s/b",
    "/s/c",
    "/s/a",
  ]);
  assert.deepEqual(await keys("--order", "DESCEND", "--sort-by", "KEY"), [
    "/s/c",
    "/s/b",
    "/s/a",
  ]);
  assert.deepEqual(await keys("--order", "DESCEND", "--sort-by", "CREATE"), [
    "/s/c",
    "/s/b",
    "/s/a",
  ]);
  assert.deepEqual((await keys("--order", "DESCEND", "--sort-by", "VERSION"))[0], "/s/a");
  // values are printed alongside, in the same order
  assert.equal(
    await ok(k, ["get", "--prefix", "/s/", "--order", "DESCEND", "--sort-by", "MODIFY"]),
    lines("/s/a", "4", "/s/c", "3", "/s/b", "2"),
  );
  // sorting applies before the limit
  assert.equal(
    await ok(k, [
      "get",
      "--prefix",
      "/s/",
      "--order",
      "DESCEND",
      "--sort-by",
      "MODIFY",
      "--limit",
      "1",
    ]),
    lines("/s/a", "4"),
  );
});

conformance(
  'etcdctl get --prefix "" shows user keys only, never compact_rev_key or gap rows',
  async (k) => {
    const all = () => ok(k, ["get", "--prefix", "", "--keys-only"]);
    assert.equal(await all(), lines("/registry/health", ""));
    assert.equal(
      await ok(k, ["get", "--from-key", "", "--keys-only"]),
      lines("/registry/health", ""),
    );
    await ok(k, ["put", "a", "1"]);
    await ok(k, ["put", "zz", "2"]);
    await ok(k, ["put", "a", "3"]);
    await ok(k, ["put", "gone", "x"]);
    await ok(k, ["del", "gone"]);
    // compaction rewrites kine's own bookkeeping row; it must stay hidden
    assert.equal(await ok(k, ["compaction", "6"]), lines("compacted revision 6"));
    // a gap-fill row as another kine process (or a rolled-back insert) leaves it
    const current = (await json(k, ["get", "a"])).header.revision;
    const db = new DatabaseSync(`${k.dir}/state.db`);
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      db.prepare(
        "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, ?, 0, 1, 0, 0, 0, NULL, NULL)",
      ).run(current + 1, `gap-${current + 1}`);
    } finally {
      db.close();
    }
    await ok(k, ["put", "b", "4"]);
    const expected = lines("/registry/health", "", "a", "", "b", "", "zz", "");
    assert.equal(await all(), expected);
    assert.equal(await ok(k, ["get", "--from-key", "", "--keys-only"]), expected);
    assert.equal(await ok(k, ["get", "--prefix", "gap-"]), "");
    assert.equal(await ok(k, ["get", "--prefix", "compact_rev_key"]), "");
    assert.equal(await ok(k, ["get", "compact_rev_key"]), "");
    const counted = await json(k, ["get", "--prefix", ""]);
    assert.equal(counted.count, 4);
    assert.equal(counted.kvs.length, 4);
  },
  { compactMinRetain: 0 },
  (b) => b.name === "sqlite", // writes a gap row into the SQLite file itself
);

conformance(
  "etcdctl del: single key prints 1/0, --prefix prints the count, --prev-kv the pairs",
  async (k) => {
    for (const key of ["/d/1", "/d/2", "/d/3", "/dx", "/e"]) await ok(k, ["put", key, `v${key}`]);
    assert.equal(await ok(k, ["del", "/d/1"]), lines("1"));
    assert.equal(await ok(k, ["del", "/d/1"]), lines("0"));
    assert.equal(await ok(k, ["del", "/never"]), lines("0"));
    assert.equal(await ok(k, ["del", "--prefix", "/d/"]), lines("2"));
    assert.equal(await ok(k, ["del", "--prefix", "/d/"]), lines("0"));
    assert.equal(await ok(k, ["get", "--prefix", "/d"]), lines("/dx", "v/dx"));
    assert.equal(await ok(k, ["del", "/e", "--prev-kv"]), lines("1", "/e", "v/e"));
    assert.equal(await ok(k, ["del", "/e", "--prev-kv"]), lines("0"));
    await ok(k, ["put", "/f/1", "one"]);
    await ok(k, ["put", "/f/2", "two"]);
    assert.equal(
      await ok(k, ["del", "--prefix", "/f/", "--prev-kv"]),
      lines("2", "/f/1", "one", "/f/2", "two"),
    );
    const left = await json(k, ["get", "--prefix", "/"]);
    assert.deepEqual(left.kvs.map((kv: any) => unbase64(kv.key)), ["/dx", "/registry/health"]);
    // each deleted key took one revision: 5 puts, 4 deletes, 2 puts, 2 deletes after rev 2
    assert.equal(left.header.revision, 2 + 5 + 4 + 2 + 2);
  },
);

conformance(
  "etcdctl txn (non-interactive): compares on mod/value/version/create, both branches",
  async (k, backend) => {
    await ok(k, ["put", "/t", "v"]);
    const rev = (await json(k, ["get", "/t"])).kvs[0].mod_revision;
    assert.equal(rev, 3);
    const txn = (compares: string[], success: string[], failure: string[]) =>
      ok(k, ["txn"], [...compares, "", ...success, "", ...failure, "", ""].join("\n"));

    // all compares hold: the success branch runs, and its get sees its own put
    assert.equal(
      await txn(
        [`mod("/t") = "${rev}"`, 'value("/t") = "v"', 'version("/t") > "0"'],
        ["put /t v2", "get /t"],
        ["put /t failed"],
      ),
      lines("SUCCESS", "", "OK", "", "/t", "v2"),
    );
    assert.equal(await ok(k, ["get", "/t", "--print-value-only"]), lines("v2"));

    // the same txn again: mod and value no longer match, so only the failure branch runs
    assert.equal(
      await txn(
        [`mod("/t") = "${rev}"`, 'value("/t") = "v"', 'version("/t") > "0"'],
        ["put /t v3", "get /t"],
        ["put /t failed"],
      ),
      lines("FAILURE", "", "OK"),
    );
    assert.equal(await ok(k, ["get", "/t", "--print-value-only"]), lines("failed"));

    // one false compare among true ones is enough to fail
    assert.equal(
      await txn(['version("/t") > "0"', 'value("/t") = "nope"'], ["put /t never"], ["get /t"]),
      lines("FAILURE", "", "/t", "failed"),
    );

    // create("k") = "0": create-if-absent, then failure with the existing pair
    const create = () => txn(['create("/new") = "0"'], ["put /new n1"], ["get /new"]);
    assert.equal(await create(), lines("SUCCESS", "", "OK"));
    assert.equal(await create(), lines("FAILURE", "", "/new", "n1"));

    // version("k") = "0" on a missing key; several ops including a delete in one branch
    if (backend.multiKeyTxn === false) {
      // It writes /absent and /new: refused whole, nothing written.
      const r = await fails(
        k,
        ["txn"],
        ['version("/absent") = "0"', "", "put /absent a", "del /new", "", "", ""].join("\n"),
      );
      assert.match(r.stderr, new RegExp(MULTI_KEY));
      assert.equal(await ok(k, ["get", "/new", "--print-value-only"]), lines("n1"));
      await ok(k, ["put", "/absent", "a"]);
      await ok(k, ["del", "/new"]);
    } else {assert.equal(
        await txn(['version("/absent") = "0"'], ["put /absent a", "del /new", "get /absent"], []),
        lines("SUCCESS", "", "OK", "", "1", "", "/absent", "a"),
      );}
    assert.equal(await ok(k, ["get", "/new"]), "");

    // -w json reports succeeded and the responses
    const r = JSON.parse(
      await ok(k, ["txn", "-w", "json"], ['mod("/t") > "0"', "", "get /t", "", "", ""].join("\n")),
    );
    assert.equal(r.succeeded, true);
    assert.equal(r.responses.length, 1);
    const kv = r.responses[0].Response.ResponseRange.kvs[0];
    assert.equal(unbase64(kv.key), "/t");
    assert.equal(unbase64(kv.value), "failed");
    assert.equal(kv.version, 3);
  },
);

conformance(
  "etcdctl compaction: older revisions become compacted, later ones stay readable",
  async (k, backend) => {
    await ok(k, ["put", "/c", "1"]); // 3
    await ok(k, ["put", "/c", "2"]); // 4
    await ok(k, ["put", "/c", "3"]); // 5
    assert.equal(await ok(k, ["compaction", "4"]), lines("compacted revision 4"));
    for (const rev of ["2", "3"]) {
      const r = await fails(k, ["get", "/c", `--rev=${rev}`]);
      assert.match(r.stderr, /Error: etcdserver: mvcc: required revision has been compacted\n$/);
      assert.ok(r.stderr.includes(COMPACTED));
    }
    const list = await fails(k, ["get", "--prefix", "/", "--rev=3"]);
    assert.ok(list.stderr.includes(COMPACTED));
    // the compact revision itself and later revisions still answer
    assert.equal(await ok(k, ["get", "/c", "--rev=4"]), lines("/c", "2"));
    assert.equal(await ok(k, ["get", "/c", "--rev=5"]), lines("/c", "3"));
    assert.equal(await ok(k, ["get", "/c"]), lines("/c", "3"));
    // compaction creates no revision (NATS: its record takes one that no watcher sees)
    const current = (await json(k, ["get", "/c"])).header.revision;
    assert.equal(current, backend.compactionWrites ? 6 : 5);
    // compacting again at or below the compact revision, or into the future, fails
    assert.ok((await fails(k, ["compaction", "4"])).stderr.includes(COMPACTED));
    assert.ok((await fails(k, ["compaction", "3"])).stderr.includes(COMPACTED));
    const future = String(current + 1);
    assert.ok((await fails(k, ["compaction", future])).stderr.includes(FUTURE));
    assert.equal(await ok(k, ["compaction", "5"]), lines("compacted revision 5"));
    assert.ok((await fails(k, ["get", "/c", "--rev=4"])).stderr.includes(COMPACTED));
  },
  { compactMinRetain: 0 },
);

conformance(
  "etcdctl endpoint status: a leader with its member id, term 1, revision as raft index",
  async (k) => {
    const table = await ok(k, ["endpoint", "status"]);
    const escaped = k.endpoint.replaceAll(".", "\\.");
    const m = new RegExp(
      `^${escaped}, ([0-9a-f]+), 3\\.6\\.11, ([0-9.]+) (B|kB|MB|GB), true, false, 1, 2, 2, \\n$`,
    ).exec(table);
    assert.ok(m, `unexpected endpoint status line: ${JSON.stringify(table)}`);
    assert.ok(Number(m[2]) > 0, "DB size must not be zero");
    const status = await json(k, ["endpoint", "status"]);
    assert.equal(status.length, 1);
    assert.equal(status[0].Endpoint, k.endpoint);
    const st = status[0].Status;
    assert.equal(st.version, "3.6.11");
    assert.ok(Number.isInteger(st.dbSize) && st.dbSize > 0);
    assert.ok(st.dbSizeInUse > 0 && st.dbSizeInUse <= st.dbSize);
    assert.equal(st.header.revision, 2);
    assert.equal(st.header.raft_term, 1);
    assert.ok(st.header.cluster_id > 0);
    assert.equal(st.leader, st.header.member_id);
    assert.equal(st.leader.toString(16), m[1]);
    assert.deepEqual([st.raftTerm, st.raftIndex, st.raftAppliedIndex], [1, 2, 2]);
  },
);

conformance(
  "etcdctl endpoint status reports --emulated-etcd-version",
  async (k) => {
    const status = await json(k, ["endpoint", "status"]);
    assert.equal(status[0].Status.version, "3.5.99");
  },
  { emulatedEtcdVersion: "3.5.99" },
);

conformance("etcdctl endpoint health and member list", async (k) => {
  const health = await etcdctl(k.endpoint, ["endpoint", "health"]);
  assert.equal(health.code, 0, health.stderr);
  // etcdctl 3.4 prints the verdict on stderr
  assert.match(
    health.stdout + health.stderr,
    new RegExp(
      `^${k.endpoint.replaceAll(".", "\\.")} is healthy: successfully committed proposal: took = `,
      "m",
    ),
  );
  const hj = await json(k, ["endpoint", "health"]);
  assert.equal(hj[0].endpoint, k.endpoint);
  assert.equal(hj[0].health, true);

  const url = `http://${k.endpoint}`;
  const ml = await json(k, ["member", "list"]);
  const id = ml.header.member_id.toString(16);
  assert.equal(
    await ok(k, ["member", "list"]),
    lines(`${id}, started, kine, ${url}, ${url}, false`),
  );
  assert.equal(ml.members[0].ID, ml.header.member_id);
  assert.equal(ml.header.revision, 2);
  assert.equal(ml.members.length, 1);
  assert.equal(ml.members[0].name, "kine");
  assert.deepEqual(ml.members[0].clientURLs, [url]);
  assert.deepEqual(ml.members[0].peerURLs, [url]);
});

conformance("etcdctl lease grant 30 then put --lease", async (k) => {
  const grant = async (ttl: number) => {
    const out = await ok(k, ["lease", "grant", String(ttl)]);
    const m = new RegExp(`^lease ([0-9a-f]{16}) granted with TTL\\(${ttl}s\\)\n$`).exec(out);
    assert.ok(m, `unexpected lease grant output: ${JSON.stringify(out)}`);
    return m[1];
  };
  const id = await grant(30);
  const other = await grant(600);
  assert.notEqual(id, other);
  assert.equal(await ok(k, ["put", "/l", "v", "--lease=" + id]), "OK\n");
  assert.equal(await ok(k, ["put", "/l2", "v", "--lease=" + id]), "OK\n");
  // lease IDs are int64: compare the raw JSON digits, not a rounded double
  const raw = await ok(k, ["get", "/l", "-w", "json"]);
  assert.equal(/"lease":([0-9]+)/.exec(raw)?.[1], BigInt(`0x${id}`).toString());
  assert.equal(unbase64(JSON.parse(raw).kvs[0].value), "v");
  const ttl = await ok(k, ["lease", "timetolive", id, "--keys"]);
  const m =
    /^lease ([0-9a-f]+) granted with TTL\(30s\), remaining\(([0-9]+)s\), attached keys\(\[(.*)\]\)\n$/
      .exec(ttl);
  assert.ok(m, `unexpected timetolive output: ${JSON.stringify(ttl)}`);
  assert.equal(m[1].padStart(16, "0"), id);
  assert.ok(Number(m[2]) > 0 && Number(m[2]) <= 30, `remaining ${m[2]}s`);
  assert.deepEqual(m[3].split(" ").sort(), ["/l", "/l2"]);
  // rewriting without --lease drops the lease
  await ok(k, ["put", "/l2", "w"]);
  assert.equal((await json(k, ["get", "/l2"])).kvs[0].lease, undefined);
  // revoking deletes the keys still attached
  assert.equal(await ok(k, ["lease", "revoke", id]), `lease ${id} revoked\n`);
  assert.equal(await ok(k, ["get", "/l"]), "");
  assert.equal(await ok(k, ["get", "/l2"]), lines("/l2", "w"));
});

conformance("MemberList spells client URLs from the :authority the client used", async (k) => {
  const port = k.endpoint.split(":")[1];
  const c = connect(k.endpoint, grpc.credentials.createInsecure(), {
    "grpc.default_authority": `localhost:${port}`,
  });
  try {
    const r = await c.cluster.memberList({});
    assert.equal(r.members.length, 1);
    assert.equal(r.members[0].name, "kine");
    assert.deepEqual(r.members[0].clientURLs, [`http://localhost:${port}`]);
  } finally {
    c.close();
  }
});

// etcd client v3.5.0 sends `:authority: #initially=[a;b]` (spec §2.9, §13 item 39); MemberList
// answers with those URLs.
Deno.test(
  "MemberList with the etcd 3.5.0 `#initially=[a;b]` authority",
  () =>
    withKine(async (k) => {
      const c = connect(k.endpoint, grpc.credentials.createInsecure(), {
        "grpc.default_authority": "#initially=[http://kine-a:2379;http://kine-b:2379]",
      });
      try {
        const r = await c.cluster.memberList({});
        assert.deepEqual(r.members[0].clientURLs, ["http://kine-a:2379,http://kine-b:2379"]);
      } finally {
        c.close();
      }
    }),
);
