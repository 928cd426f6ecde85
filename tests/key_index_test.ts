/**
 * The in-process key index that answers Range: its data structure against a
 * plain model of the log, reads pinned to every revision of a history and
 * across compaction on every backend, and its rebuild at start-up.
 */
import assert from "node:assert/strict";
import { KeyIndex } from "../lib/backend/logstructured/key_index.ts";
import { compareKeys } from "../lib/backend/keys.ts";
import { b, type EtcdClient, s } from "./helpers/client.ts";
import { conformance, restartable } from "./helpers/conformance.ts";
import { startTestKine } from "./helpers/kine.ts";

const COMPACTED = "etcdserver: mvcc: required revision has been compacted";

/** A deterministic generator, so a failure repeats. */
function random(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x / 2147483648;
  };
}

interface ModelRow {
  key: string;
  mod: number;
  create: number;
  version: number;
  deleted: boolean;
}

/** The live rows of `[start, end)` at `rev` by reading the whole log, as the SQL does. */
function modelList(log: ModelRow[], start: string, end: string | null, rev: number) {
  const latest = new Map<string, ModelRow>();
  for (const r of log) if (r.mod <= rev) latest.set(r.key, r);
  return [...latest.values()]
    .filter((r) =>
      !r.deleted && compareKeys(r.key, start) >= 0 && (end === null || compareKeys(r.key, end) < 0)
    )
    .sort((a, z) => compareKeys(a.key, z.key))
    .map((r) => [r.key, r.mod, r.create, r.version]);
}

Deno.test("KeyIndex answers like a scan of the log at every revision, before, during and after trims", () => {
  const next = random(7);
  const index = new KeyIndex();
  const log: ModelRow[] = [];
  const live = new Map<string, ModelRow>();
  // More keys than a block holds, so blocks split; a few keys above U+FFFF order as bytes.
  const keys = Array.from({ length: 1500 }, (_, i) => `/k/${(i * 7919) % 1500}`)
    .concat(["/k/\u{1F600}", "/k/\uE000", "/k/\uFFFF"]);
  let compact = 0;
  // A trim walks the index a slice at a time, with rows applied and reads answered in between.
  let trimFrom: string | null = null;
  for (let rev = 1; rev <= 6000; rev++) {
    if (trimFrom !== null) trimFrom = index.trimSome(compact, trimFrom, 40);
    const key = keys[Math.floor(next() * keys.length)];
    const prev = live.get(key);
    const deleted = prev !== undefined && next() < 0.25;
    const row: ModelRow = deleted
      ? { key, mod: rev, create: 0, version: 0, deleted }
      : { key, mod: rev, create: prev?.create ?? rev, version: (prev?.version ?? 0) + 1, deleted };
    if (!prev && deleted) continue;
    log.push(row);
    if (deleted) live.delete(key);
    else live.set(key, row);
    index.apply({ ...row, lease: 0 });
    if (rev % 1500 === 0) {
      // What compaction leaves: each key's newest row at or before it unless a tombstone, and all after.
      compact = rev - 700;
      trimFrom = index.trimSome(compact, "", 40);
      const kept = new Set<ModelRow>();
      const newest = new Map<string, ModelRow>();
      for (const r of log) if (r.mod <= compact) newest.set(r.key, r);
      for (const r of newest.values()) if (!r.deleted) kept.add(r);
      log.splice(0, log.length, ...log.filter((r) => r.mod > compact || kept.has(r)));
    }
    if (rev % 250 !== 0) continue;
    for (let probe = 0; probe < 8; probe++) {
      const at = compact + 1 + Math.floor(next() * (rev - compact));
      const a = keys[Math.floor(next() * keys.length)];
      const z = keys[Math.floor(next() * keys.length)];
      const [start, end] = compareKeys(a, z) <= 0 ? [a, z] : [z, a];
      const bounded = probe % 2 === 0 ? end : null;
      const want = modelList(log, start, bounded, at);
      const got = index.list(start, bounded, at, 0)
        .map((kv) => [kv.key, kv.modRevision, kv.createRevision, kv.version]);
      assert.deepEqual(got, want, `list [${start}, ${bounded}) at ${at}`);
      assert.equal(index.count(start, bounded, at), want.length);
      assert.deepEqual(
        index.list(start, bounded, at, 3).map((kv) => kv.key),
        want.slice(0, 3).map((r) => r[0]),
      );
      const one = index.get(a, at);
      assert.deepEqual(
        one && [one.key, one.modRevision],
        modelList(log, a, a + "\0", at)[0]?.slice(0, 2),
      );
    }
  }
  while (trimFrom !== null) trimFrom = index.trimSome(compact, trimFrom, 40);
  // Trimmed: one revision per live key at the last compaction, plus what came after it.
  assert.equal(index.revisions(), log.length);
  assert.equal(index.size, new Set(log.map((r) => r.key)).size);
});

Deno.test("KeyIndex counts at the newest revision as a walk of its keys would", () => {
  const next = random(3);
  const index = new KeyIndex();
  const keys = Array.from({ length: 4000 }, (_, i) => `/c/${(i * 7919) % 4000}`);
  const versions = new Map<string, number>();
  // Blocks fill and split, keys die and come back: every count, whole blocks taken by their
  // tallies, must equal the keys a list at the same revision returns.
  const check = (rev: number) => {
    for (const at of [rev, rev - 1, rev - 50]) {
      assert.equal(index.count("", null, at), index.list("", null, at, 0).length, `all at ${at}`);
      const a = keys[Math.floor(next() * keys.length)];
      assert.equal(index.count(a, null, at), index.list(a, null, at, 0).length, `from ${a}`);
      assert.equal(index.count("/c/1", "/c/5", at), index.list("/c/1", "/c/5", at, 0).length);
    }
  };
  let rev = 0;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 3000; i++) {
      const key = keys[Math.floor(next() * keys.length)];
      const version = versions.get(key) ?? 0;
      const deleted = version > 0 && next() < 0.3;
      if (version === 0 && deleted) continue;
      rev++;
      versions.set(key, deleted ? 0 : version + 1);
      index.apply({ key, mod: rev, create: rev, version: version + 1, lease: 0, deleted });
      if (i % 1000 === 999) check(rev);
    }
    // Trimmed a slice at a time, the tallies must hold between slices too.
    for (let from: string | null = ""; from !== null;) {
      from = index.trimSome(rev - 500, from, 700);
      check(rev);
    }
  }
  const live = [...versions.values()].filter((v) => v > 0).length;
  assert.equal(index.count("", null, rev), live);
});

/** Writes a history of creates, updates, deletes and re-creates over a few keys; returns its revisions. */
async function writeHistory(client: EtcdClient, writes: number): Promise<number[]> {
  const next = random(11);
  const revisions: number[] = [];
  const live = new Set<string>();
  for (let i = 0; i < writes; i++) {
    const key = `/h/${Math.floor(next() * 8)}`;
    let rev: number;
    if (live.has(key) && next() < 0.3) {
      rev = Number((await client.kv.deleteRange({ key: b(key) })).header.revision);
      live.delete(key);
    } else {
      rev = Number((await client.kv.put({ key: b(key), value: b(`v${i}`) })).header.revision);
      live.add(key);
    }
    revisions.push(rev);
  }
  return revisions;
}

/** What a client sees of `/h/` at `revision`: every kv field, and the count-only and keys-only forms. */
async function snapshotAt(client: EtcdClient, revision: number) {
  const range = { key: b("/h/"), range_end: b("/h0"), revision };
  const full = await client.kv.range(range);
  const counted = await client.kv.range({ ...range, count_only: true });
  const keys = await client.kv.range({ ...range, keys_only: true, limit: 3 });
  const one = await client.kv.range({ key: b("/h/3"), revision });
  return {
    kvs: full.kvs.map((kv: any) => [
      s(kv.key),
      s(kv.value),
      Number(kv.create_revision),
      Number(kv.mod_revision),
      Number(kv.version),
    ]),
    count: Number(counted.count),
    keys: keys.kvs.map((kv: any) => [s(kv.key), kv.value.length]),
    more: keys.more,
    keysCount: Number(keys.count),
    one: one.kvs.map((kv: any) => s(kv.value)),
  };
}

async function rejectsCompacted(p: Promise<unknown>): Promise<void> {
  await assert.rejects(p, (err: any) => err.details === COMPACTED);
}

conformance(
  "reads pinned to every revision of a history; compaction keeps those at and after it",
  async ({ client }) => {
    const revisions = await writeHistory(client, 60);
    const before = new Map<number, unknown>();
    for (const rev of revisions) before.set(rev, await snapshotAt(client, rev));
    // Each revision shows the write it made: a value, or one key fewer.
    assert.notDeepEqual(before.get(revisions[10]), before.get(revisions[11]));
    const target = revisions[30];
    await client.kv.compact({ revision: target });
    for (const rev of revisions) {
      if (rev < target) await rejectsCompacted(client.kv.range({ key: b("/h/1"), revision: rev }));
      else assert.deepEqual(await snapshotAt(client, rev), before.get(rev), `at ${rev}`);
    }
  },
  { compactMinRetain: 0 },
);

restartable(
  "the key index is rebuilt at start-up: history, tombstones and compaction as before",
  async (endpoint) => {
    let k = await startTestKine({ endpoint, compactMinRetain: 0 });
    const before = new Map<number, unknown>();
    let revisions: number[] = [];
    try {
      revisions = await writeHistory(k.client, 60);
      await k.client.kv.compact({ revision: revisions[20] });
      for (const rev of revisions.slice(20)) before.set(rev, await snapshotAt(k.client, rev));
    } finally {
      await k.close();
    }
    k = await startTestKine({ endpoint, compactMinRetain: 0 });
    try {
      await rejectsCompacted(k.client.kv.range({ key: b("/h/1"), revision: revisions[19] }));
      for (const rev of revisions.slice(20)) {
        assert.deepEqual(await snapshotAt(k.client, rev), before.get(rev), `at ${rev}`);
      }
      // And it goes on from the stream: a write after the restart is read at once.
      const put = await k.client.kv.put({ key: b("/h/3"), value: b("after") });
      const now = await snapshotAt(k.client, Number(put.header.revision));
      assert.deepEqual(now.one, ["after"]);
    } finally {
      await k.close();
    }
  },
);
