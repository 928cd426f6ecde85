/**
 * The load generator's jobs, run inside worker processes (bench/worker.ts).
 * Every job gets plain JSON parameters and a {@link JobControl}, and returns
 * a plain JSON result: histograms, counts and errors.
 */
import { bytes, Conn, errorText, prefixEnd, text, value } from "./rpc.ts";
import { Histogram, Histograms } from "./stats.ts";

/** How a running job talks back to the coordinator. */
export interface JobControl {
  /** Tells the coordinator the job is set up (watches created, ...). */
  ready(data?: unknown): void;
  /** Resolves with the coordinator's stop message, if it sends one. */
  stopped: Promise<any>;
}

/** Error messages and how often each happened. */
class Errors {
  readonly counts: Record<string, number> = {};
  total = 0;
  add(err: unknown): void {
    const m = errorText(err).slice(0, 160);
    this.counts[m] = (this.counts[m] ?? 0) + 1;
    this.total++;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function connections(target: string, n: number): Conn[] {
  return Array.from({ length: Math.max(1, n) }, () => new Conn(target));
}

/** Key of preloaded object `i`; `set` picks the naming scheme. */
export function preloadKey(set: "kube" | "list", i: number, small: number): string {
  if (set === "kube") return `/registry/configmaps/ns-${i % 50}/pre-${i}`;
  const n = String(i).padStart(7, "0");
  return i < small ? `/list/small/${n}` : `/list/rest/${n}`;
}

/** Writes keys `from..to-1` in txns of `batch` puts, `concurrency` txns at a time. */
async function preload(p: {
  target: string;
  set: "kube" | "list";
  from: number;
  to: number;
  small: number;
  valueSize: number;
  batch: number;
  concurrency: number;
}) {
  const conn = new Conn(p.target);
  const h = new Histograms();
  const v = value(p.valueSize);
  let next = p.from;
  let revision = 0;
  const loop = async () => {
    while (next < p.to) {
      const start = next;
      next = Math.min(p.to, next + p.batch);
      const success: Record<string, unknown>[] = [];
      for (let i = start; i < next; i++) {
        success.push({ request_put: { key: bytes(preloadKey(p.set, i, p.small)), value: v } });
      }
      const res = await h.time(
        `txn (${p.batch} puts)`,
        () => conn.txn({ compare: [], success, failure: [] }),
      );
      revision = Math.max(revision, res.header.revision);
    }
  };
  try {
    await Promise.all(Array.from({ length: p.concurrency }, loop));
  } finally {
    conn.close();
  }
  return { writes: p.to - p.from, revision, hist: h };
}

const MOD_EQ = (key: Uint8Array, rev: number) => ({
  key,
  target: "MOD",
  result: "EQUAL",
  mod_revision: rev,
});

/**
 * kube-apiserver-like loops: create (MOD==0 → Put), update twice (MOD==rev →
 * Put else Range), read, delete every third (MOD==rev → DeleteRange else
 * Range), and list a namespace (limit 500) every 20 writes.
 */
async function kube(p: {
  target: string;
  worker: number;
  conns: number;
  loops: number;
  durationMs: number;
  namespaces: number;
  valueSize: number;
}) {
  const conns = connections(p.target, p.conns);
  const h = new Histograms();
  const errors = new Errors();
  const revisions: number[] = [];
  let conflicts = 0;
  const deadline = performance.now() + p.durationMs;
  const values = [value(p.valueSize, 0x61), value(p.valueSize, 0x62), value(p.valueSize, 0x63)];

  const loop = async (l: number) => {
    const c = conns[l % conns.length];
    let writes = 0;
    for (let i = 0; performance.now() < deadline; i++) {
      const ns = (p.worker * p.loops + l + i) % p.namespaces;
      const key = bytes(`/registry/configmaps/ns-${ns}/bench-${p.worker}-${l}-${i}`);
      const op = (name: string, fn: () => Promise<any>) => h.time(name, fn);
      try {
        const created = await op("create", () =>
          c.txn({
            compare: [MOD_EQ(key, 0)],
            success: [{ request_put: { key, value: values[0] } }],
            failure: [],
          }));
        if (!created.succeeded) {
          conflicts++;
          continue;
        }
        let rev = created.header.revision;
        revisions.push(rev);
        writes++;
        for (const v of [values[1], values[2]]) {
          const updated = await op("update", () =>
            c.txn({
              compare: [MOD_EQ(key, rev)],
              success: [{ request_put: { key, value: v } }],
              failure: [{ request_range: { key } }],
            }));
          if (!updated.succeeded) {
            conflicts++;
            break;
          }
          rev = updated.header.revision;
          revisions.push(rev);
          writes++;
        }
        await op("get", () => c.range({ key }));
        if (i % 3 === 0) {
          const deleted = await op("delete", () =>
            c.txn({
              compare: [MOD_EQ(key, rev)],
              success: [{ request_delete_range: { key } }],
              failure: [{ request_range: { key } }],
            }));
          if (deleted.succeeded) {
            revisions.push(deleted.header.revision);
            writes++;
          } else conflicts++;
        }
        if (writes >= 20) {
          writes -= 20;
          const prefix = `/registry/configmaps/ns-${ns}/`;
          await op(
            "list",
            () => c.range({ key: bytes(prefix), range_end: prefixEnd(prefix), limit: 500 }),
          );
        }
      } catch (err) {
        errors.add(err);
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: p.loops }, (_, l) => loop(l)));
  for (const c of conns) c.close();
  return { writes: revisions.length, revisions, conflicts, hist: h, errors };
}

/** Puts of random keys from `concurrency` loops over `conns` connections, optionally with a lease. */
async function puts(p: {
  target: string;
  conns: number;
  concurrency: number;
  durationMs: number;
  lease: number;
  valueSize: number;
  prefix: string;
}) {
  const conns = connections(p.target, p.conns);
  const h = new Histograms();
  const errors = new Errors();
  const v = value(p.valueSize);
  const deadline = performance.now() + p.durationMs;
  let writes = 0;
  const loop = async (l: number) => {
    const c = conns[l % conns.length];
    while (performance.now() < deadline) {
      const key = bytes(p.prefix + Math.random().toString(16).slice(2, 10));
      try {
        await h.time("put", () => c.put({ key, value: v, lease: p.lease }));
        writes++;
      } catch (err) {
        errors.add(err);
        await sleep(10);
      }
    }
  };
  await Promise.all(Array.from({ length: p.concurrency }, (_, l) => loop(l)));
  for (const c of conns) c.close();
  return { writes, hist: h, errors };
}

/** A watch stream with one watch on `key`..`end`; resolves once it is created. */
function openWatch(
  conn: Conn,
  create: Record<string, unknown>,
  onEvents: (events: any[]) => void,
  onFail: (why: string) => void,
): Promise<{ cancel(): void }> {
  return new Promise((resolve, reject) => {
    const stream = conn.watchStream();
    let created = false;
    stream.on("data", (res: any) => {
      if (res.created && !created) {
        created = true;
        if (res.canceled) reject(new Error(`watch refused: ${res.cancel_reason}`));
        else resolve({ cancel: () => stream.cancel() });
      } else if (res.canceled) {
        onFail(`watch canceled: ${res.cancel_reason || "(no reason)"}`);
      }
      if (res.events?.length) onEvents(res.events);
    });
    stream.on("error", (err: unknown) => {
      if ((err as { code?: number }).code === 1) return; // our own cancel
      if (!created) reject(err);
      else onFail(errorText(err));
    });
    stream.write({ create_request: create });
  });
}

/**
 * Prefix watchers (with prev_kv) that record every event's revision; on stop
 * they wait until they have seen `untilRevision`, then report what they saw.
 */
async function watchers(p: { target: string; prefix: string; count: number }, ctl: JobControl) {
  const errors = new Errors();
  const watched = Array.from({ length: p.count }, () => ({
    conn: new Conn(p.target),
    seen: new Set<number>(),
    maxRevision: 0,
    events: 0,
    duplicates: 0,
    missingPrevKv: 0,
  }));
  const handles = await Promise.all(watched.map((w) =>
    openWatch(w.conn, {
      key: bytes(p.prefix),
      range_end: prefixEnd(p.prefix),
      prev_kv: true,
    }, (events) => {
      for (const e of events) {
        const rev = e.kv.mod_revision;
        w.events++;
        if (w.seen.has(rev)) w.duplicates++;
        w.seen.add(rev);
        if (rev > w.maxRevision) w.maxRevision = rev;
        const needsPrev = e.type === "DELETE" || e.kv.version > 1;
        if (needsPrev && !(e.prev_kv?.key?.length > 0)) w.missingPrevKv++;
      }
    }, (why) => errors.add(why))
  ));
  ctl.ready();
  const { untilRevision } = await ctl.stopped;
  const giveUp = performance.now() + 15_000;
  while (watched.some((w) => w.maxRevision < untilRevision) && performance.now() < giveUp) {
    await sleep(20);
  }
  for (const h of handles) h.cancel();
  for (const w of watched) w.conn.close();
  return {
    watchers: watched.map((w) => ({
      revisions: [...w.seen],
      events: w.events,
      duplicates: w.duplicates,
      missingPrevKv: w.missingPrevKv,
    })),
    errors,
  };
}

/** Idle single-key watches, `perStream` per stream; reports any event or cancellation. */
async function idleWatchers(
  p: { target: string; worker: number; streams: number; perStream: number },
  ctl: JobControl,
) {
  const errors = new Errors();
  const conns = connections(p.target, p.streams);
  let events = 0;
  const streams = conns.map((c, s) => {
    const stream = c.watchStream();
    let created = 0;
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (res: any) => {
        if (res.created) created++;
        if (res.canceled) errors.add(`watch canceled: ${res.cancel_reason || "(no reason)"}`);
        events += res.events?.length ?? 0;
        if (created === p.perStream) resolve();
      });
      stream.on("error", (err: unknown) => {
        if ((err as { code?: number }).code !== 1) {
          errors.add(err);
          reject(err);
        }
      });
    });
    for (let i = 0; i < p.perStream; i++) {
      const key = bytes(`/idle/w${p.worker}/s${s}/k${i}`);
      stream.write({ create_request: { key } });
    }
    return { stream, done };
  });
  await Promise.all(streams.map((s) => s.done));
  ctl.ready({ watches: p.streams * p.perStream });
  await ctl.stopped;
  for (const s of streams) s.stream.cancel();
  for (const c of conns) c.close();
  return { events, errors };
}

/**
 * Paced puts of fresh keys under a prefix this worker also watches. Delivery
 * latency is measured from the put's response to its event (0 when the event
 * comes first) and from sending the put to its event.
 */
async function hotWrites(p: {
  target: string;
  worker: number;
  rate: number;
  durationMs: number;
  valueSize: number;
}) {
  const errors = new Errors();
  const h = new Histograms();
  const delivery = new Histogram();
  const deliverySent = new Histogram();
  const prefix = `/hot/w${p.worker}/`;
  const writer = new Conn(p.target);
  const watchConn = new Conn(p.target);
  const pending = new Map<string, { sent: number; acked?: number }>();
  let eventsBeforeAck = 0;
  const watch = await openWatch(
    watchConn,
    { key: bytes(prefix), range_end: prefixEnd(prefix) },
    (events) => {
      const now = performance.now();
      for (const e of events) {
        const key = text(e.kv.key);
        const w = pending.get(key);
        if (!w) continue;
        pending.delete(key);
        deliverySent.add(now - w.sent);
        if (w.acked === undefined) {
          eventsBeforeAck++;
          delivery.add(0);
        } else delivery.add(now - w.acked);
      }
    },
    (why) => errors.add(why),
  );
  const v = value(p.valueSize);
  const interval = 1000 / p.rate;
  const start = performance.now();
  const inflight = new Set<Promise<void>>();
  let writes = 0;
  for (let n = 0; n * interval < p.durationMs; n++) {
    const wait = start + n * interval - performance.now();
    if (wait > 1) await sleep(wait);
    const key = `${prefix}k${n}`;
    const w: { sent: number; acked?: number } = { sent: performance.now() };
    pending.set(key, w);
    const put = h.time("put", () => writer.put({ key: bytes(key), value: v })).then(() => {
      writes++;
      w.acked = performance.now();
    }, (err) => {
      pending.delete(key);
      errors.add(err);
    }).finally(() => inflight.delete(put));
    inflight.add(put);
  }
  await Promise.all(inflight);
  const giveUp = performance.now() + 5000;
  while (pending.size > 0 && performance.now() < giveUp) await sleep(10);
  watch.cancel();
  writer.close();
  watchConn.close();
  return {
    writes,
    hist: h,
    delivery,
    deliverySent,
    missedEvents: pending.size,
    eventsBeforeAck,
    errors,
  };
}

/** Full listings of prefixes, paged (limit 500, pinned to the first page's revision) or not. */
async function listings(p: {
  target: string;
  reps: number;
  listings: { name: string; prefix: string; mode: "paged" | "unpaged" | "count"; expect: number }[];
}) {
  const conn = new Conn(p.target);
  const h = new Histograms();
  const errors = new Errors();
  const listOnce = async (l: (typeof p.listings)[number]): Promise<number> => {
    const end = prefixEnd(l.prefix);
    if (l.mode === "count") {
      const res = await conn.range({ key: bytes(l.prefix), range_end: end, count_only: true });
      return res.count;
    }
    if (l.mode === "unpaged") {
      return (await conn.range({ key: bytes(l.prefix), range_end: end }, 120_000)).kvs.length;
    }
    let key = bytes(l.prefix);
    let revision = 0;
    let n = 0;
    for (;;) {
      const res = await conn.range({ key, range_end: end, limit: 500, revision });
      revision = res.header.revision;
      n += res.kvs.length;
      if (!res.more || res.kvs.length === 0) return n;
      key = bytes(text(res.kvs[res.kvs.length - 1].key) + "\0");
    }
  };
  for (let r = 0; r < p.reps; r++) {
    for (const l of p.listings) {
      try {
        const n = await h.time(l.name, () => listOnce(l));
        if (n !== l.expect) errors.add(`${l.name}: got ${n} keys, want ${l.expect}`);
      } catch (err) {
        errors.add(err);
      }
    }
  }
  conn.close();
  return { hist: h, errors };
}

/** The jobs a worker can run, by name. */
export const JOBS: Record<string, (params: any, ctl: JobControl) => Promise<unknown>> = {
  preload,
  kube,
  puts,
  watchers,
  idleWatchers,
  hotWrites,
  listings,
};
