/**
 * `kine migrate --from SOURCE --to TARGET`: copies a kine datastore into an
 * empty one with every revision kept (rows with their ids, create and previous
 * revisions, leases, old values, versions, the compact revision, lease
 * records, and the auth state, which is a row of the log), at a pinned source
 * revision, in batches; then optionally follows the source; then compares a
 * digest of the live keys on both sides.
 *
 * A copy records a marker in the target, so a copy that was interrupted
 * (Ctrl-C, kill -9) can be finished with `--resume`: it continues above the
 * target's highest revision.
 *
 * @module
 */
import { defaultConfig } from "../config/mod.ts";
import { type BackendOptions, EndpointError, openBackend } from "../backend/endpoint.ts";
import { type Importer, openImporter } from "../backend/import.ts";
import { backendOptions } from "../mod.ts";
import { createLogger, type Logger } from "../log/mod.ts";
import { AUTH_KEY } from "../auth/store.ts";
import { checkKeys, copyRows, MigrateError, writeBatch } from "./copy.ts";
import { backendPager, type Digest, digest, FIRST_KEY } from "./digest.ts";
import { type MigrateOptions, parseMigrateArgs, type Side } from "./flags.ts";
import { follow } from "./follow.ts";
import { Progress, type ProgressSink, stderrSink } from "./progress.ts";
import { type MigrateSource, openKineSource } from "./source.ts";
import { connectEtcd, isEtcdEndpoint } from "./etcd_client.ts";
import { checkEtcdEmpty, copyToEtcd, etcdPager, valuesOnly } from "./to_etcd.ts";
import { openEtcdSource } from "./etcd_source.ts";

export { MIGRATE_HELP, type MigrateOptions, parseMigrateArgs } from "./flags.ts";
export { MigrateError } from "./copy.ts";

/** Exit status of a copy interrupted by a signal (it can be resumed). */
const INTERRUPTED = 130;

/** Runs `kine migrate` with its arguments (after `migrate`); returns the exit status. */
export async function runMigrate(argv: string[]): Promise<number> {
  const parsed = parseMigrateArgs(argv);
  if (parsed.kind === "help") {
    console.log(parsed.text);
    return 0;
  }
  if (parsed.kind === "error") {
    console.error(`kine migrate: ${parsed.message}`);
    return 2;
  }
  let stopping = false;
  const stop = () => {
    if (stopping) Deno.exit(INTERRUPTED);
    stopping = true;
    console.error("kine migrate: stopping after the batch under way (again to quit at once)");
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  const logger = createLogger({ stdout: Deno.stderr });
  try {
    return await migrate(parsed.options, logger, stderrSink(), () => stopping);
  } catch (err) {
    console.error(`kine migrate: ${(err as Error)?.message ?? err}`);
    return err instanceof MigrateError || err instanceof EndpointError ? 2 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
  }
}

/** An endpoint with its password (in the authority or a parameter) masked. */
export function redact(endpoint: string): string {
  return endpoint
    .replace(/(:\/\/[^:/@]*:)[^@/]*@/, "$1***@")
    .replace(/\b(password|pass|token)=[^&]*/gi, "$1=***");
}

function sideOptions(side: Side, o: MigrateOptions, logger: Logger): BackendOptions {
  return backendOptions(
    {
      ...defaultConfig(),
      endpoint: side.endpoint,
      ...side.tls,
      tableName: o.tableName,
      // Unreachable is an answer at once, not after a minute of retries.
      datastoreRetryTimeout: 0,
    },
    logger,
  );
}

/** Opens one side; a failure names the side and its endpoint. */
async function open<T>(what: string, side: Side, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof MigrateError) throw err;
    const message = (err as Error)?.message ?? String(err);
    throw new MigrateError(`${what} ${redact(side.endpoint)}: ${message}`);
  }
}

/** The copy, from opening both sides to the digest; returns the exit status. */
export async function migrate(
  o: MigrateOptions,
  logger: Logger,
  sink: ProgressSink,
  stopped: () => boolean,
): Promise<number> {
  const say = (line: string) => console.log(line);
  const source = await open("source", o.from, () => openSource(o, logger));
  let target: Importer | undefined;
  try {
    if (isEtcdEndpoint(o.to.endpoint)) return await migrateToEtcd(o, source, sink, stopped);
    target = await open("target", o.to, () => openImporter(sideOptions(o.to, o, logger)));
    const state = await target.state();
    const marker = JSON.stringify({ source: redact(o.from.endpoint) });
    checkTarget(o, state, marker);
    const started = performance.now();
    const pinned = await open("source", o.from, () => source.pin());
    for (const note of source.notes?.() ?? []) say(note);
    if (state.marker === null) {
      await precheck(source, target, pinned);
      await target.setMarker(marker);
    }
    say(
      `kine migrate: ${redact(o.from.endpoint)} -> ${redact(o.to.endpoint)}, ` +
        `revisions ${state.head + 1}..${pinned}` + (state.head > 0 ? " (resumed)" : ""),
    );
    const progress = new Progress(sink, state.head, pinned);
    let head = await copyRows(
      source,
      target,
      { from: state.head, to: pinned, batch: o.batchSize },
      progress,
      stopped,
    );
    progress.done(head);
    // From the pin: an etcd source is read whole while pinned.
    const took = (performance.now() - started) / 1000;
    say(
      `copied ${progress.rows} rows in ${took.toFixed(1)} s ` +
        `(${Math.round(progress.rows / Math.max(took, 0.001))} rows/s), up to revision ${head}`,
    );
    if (stopped()) {
      say(`interrupted at revision ${head}: run the same command with --resume to finish`);
      return INTERRUPTED;
    }
    if (o.follow) {
      say("following the source's changes (Ctrl-C to stop and verify)");
      head = await follow(source, target, head, {
        batch: o.batchSize,
        untilIdle: o.untilIdle,
        stopped,
        report: say,
      });
    }
    // Above the digest's revision: the source has no such key to compare it with.
    await copyAuth(source, target, head, say);
    const leases = await source.leases();
    await target.importLeases(leases);
    const compact = await source.compactRevision();
    await target.finish(compact);
    const after = await target.state();
    await target.setMarker(null);
    await target.close();
    target = undefined;
    say(
      `rows: ${state.rows + progress.rows} read from the source, ${after.rows} in the target; ` +
        `${leases.length} leases; compact revision ${compact}`,
    );
    const equal = await verify(o, logger, source, head, say);
    return equal ? 0 : 1;
  } finally {
    await target?.close();
    await source.close();
  }
}

/** `--to etcd://`: the latest values, under etcd's own revisions. */
async function migrateToEtcd(
  o: MigrateOptions,
  source: MigrateSource,
  sink: ProgressSink,
  stopped: () => boolean,
): Promise<number> {
  if (o.follow || o.resume) {
    throw new MigrateError("--follow and --resume do not apply to --to etcd://");
  }
  const to = redact(o.to.endpoint);
  const etcd = await open("target", o.to, () => connectEtcd(o.to));
  try {
    await open("target", o.to, () => checkEtcdEmpty(etcd, to));
    const pinned = await open("source", o.from, () => source.pin());
    console.log(
      `kine migrate: ${redact(o.from.endpoint)} -> ${to}, the live keys at revision ${pinned} ` +
        "(etcd assigns its own revisions: history, revisions and versions start afresh)",
    );
    const progress = new Progress(sink, 0, pinned);
    const keys = await copyToEtcd(source, etcd, pinned, progress, stopped);
    progress.done(pinned);
    if (stopped()) {
      console.log("interrupted: the target holds part of the keys; empty it and run again");
      return INTERRUPTED;
    }
    console.log(`copied ${keys} keys in ${progress.elapsed().toFixed(1)} s`);
    const theirs = await digest(valuesOnly(source.pager), pinned);
    const ours = await digest(valuesOnly(etcdPager(etcd)), 0);
    const equal = theirs.keys === ours.keys && theirs.hash === ours.hash;
    console.log(
      `digest of keys and values: source ${theirs.keys} keys ${theirs.hash}, ` +
        `target ${ours.keys} keys ${ours.hash}: ${equal ? "equal" : "DIFFERENT"}`,
    );
    return equal ? 0 : 1;
  } finally {
    etcd.close();
  }
}

function openSource(o: MigrateOptions, logger: Logger): Promise<MigrateSource> {
  if (isEtcdEndpoint(o.from.endpoint)) return openEtcdSource(o.from);
  return openKineSource(sideOptions(o.from, o, logger));
}

/**
 * Users and roles of a source that keeps them outside its keys (etcd), as
 * kine's auth row, one revision above the copy.
 */
async function copyAuth(
  source: MigrateSource,
  target: Importer,
  head: number,
  say: (line: string) => void,
): Promise<void> {
  const auth = await source.auth?.();
  for (const note of auth?.notes ?? []) say(note);
  if (!auth?.state) return;
  await writeBatch(target, [{
    id: head + 1,
    name: AUTH_KEY,
    created: true,
    deleted: false,
    createRevision: 0,
    prevRevision: 0,
    lease: 0,
    value: auth.state,
    oldValue: null,
    version: 1,
  }]);
}

/** Refuses a target that holds data, unless it is this copy's, resumed. */
function checkTarget(
  o: MigrateOptions,
  state: { rows: number; marker: string | null },
  marker: string,
): void {
  const to = redact(o.to.endpoint);
  if (state.marker === null) {
    if (state.rows > 0) {
      throw new MigrateError(
        `target ${to} is not empty (${state.rows} rows): kine migrate copies into an empty store`,
      );
    }
    return;
  }
  if (state.marker !== marker) {
    const from = (JSON.parse(state.marker) as { source?: string }).source ?? "?";
    throw new MigrateError(`target ${to} holds an unfinished copy from ${from}, not this source`);
  }
  if (!o.resume) {
    throw new MigrateError(`target ${to} holds an unfinished copy: add --resume to finish it`);
  }
}

/** Every live key the target cannot store, named before anything is written. */
async function precheck(source: MigrateSource, target: Importer, revision: number): Promise<void> {
  let start: string | undefined = FIRST_KEY;
  while (start !== undefined) {
    const page = await source.pager(start, revision, 5000, true);
    checkKeys(target, page.kvs.map((kv) => ({ name: kv.key, id: kv.modRevision })));
    start = page.nextKey;
  }
}

/** Compares the digests of both sides at `revision`; prints them. */
async function verify(
  o: MigrateOptions,
  logger: Logger,
  source: MigrateSource,
  revision: number,
  say: (line: string) => void,
): Promise<boolean> {
  const theirs = await digest(source.pager, revision);
  const { backend } = await openBackend(sideOptions(o.to, o, logger));
  let ours: Digest;
  try {
    await backend.start();
    ours = await digest(backendPager(backend), revision);
  } finally {
    await backend.close();
  }
  const equal = theirs.keys === ours.keys && theirs.hash === ours.hash;
  say(
    `digest at revision ${revision}: source ${theirs.keys} keys ${theirs.hash}, ` +
      `target ${ours.keys} keys ${ours.hash}: ${equal ? "equal" : "DIFFERENT"}`,
  );
  return equal;
}
