/**
 * Where a copy reads from. A kine source is a backend opened on the endpoint:
 * its log, read in id order up to a pinned revision, then followed.
 */
import { type BackendOptions, openBackend } from "../backend/endpoint.ts";
import { type Backend, FROM_KEY, type LeaseRecord, type LogRecord } from "../backend/types.ts";
import { backendPager, FIRST_KEY, type KvPager } from "./digest.ts";
import { Wake } from "./wake.ts";

/** A store a copy reads: rows with their revisions, leases, and a way to follow it. */
export interface MigrateSource {
  /**
   * The revision the copy pins: every write committed before the call is at or
   * below it, and every row up to it can be read.
   */
  pin(): Promise<number>;
  /** Rows with `after < id <= upTo` in id order, at most `limit`. */
  rows(after: number, upTo: number, limit: number): Promise<LogRecord[]>;
  leases(): Promise<LeaseRecord[]>;
  compactRevision(): Promise<number>;
  /** The newest revision committed, for the lag while following. */
  latestRevision(): Promise<number>;
  /** Live keys at a revision, for the pre-check and the digest. */
  readonly pager: KvPager;
  /** What the copy did differently from the source (printed), where anything. */
  notes?(): string[];
  /**
   * A source that keeps users and roles outside its keys (etcd): kine's auth
   * state for them, with lines for the output; undefined where there are none.
   */
  auth?(): Promise<{ state?: Uint8Array; notes: string[] } | undefined>;
  /** Resolves at the source's next change, or after `ms`. */
  changed(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** Opens a kine backend as a source. */
export async function openKineSource(o: BackendOptions): Promise<MigrateSource> {
  const { backend } = await openBackend(o);
  await backend.start();
  if (!backend.logRows) {
    await backend.close();
    throw new Error(`kine migrate cannot read the log of ${o.endpoint.split(":")[0]}://`);
  }
  return new KineSource(backend);
}

class KineSource implements MigrateSource {
  readonly pager: KvPager;
  readonly #wake = new Wake();
  #cancel?: () => void;

  constructor(private readonly backend: Backend) {
    this.pager = backendPager(backend);
  }

  pin(): Promise<number> {
    return this.backend.linearize();
  }

  rows(after: number, upTo: number, limit: number): Promise<LogRecord[]> {
    return this.backend.logRows!(after, upTo, limit);
  }

  leases(): Promise<LeaseRecord[]> {
    return this.backend.leaseRecords();
  }

  async compactRevision(): Promise<number> {
    return (await this.backend.status()).compactRevision;
  }

  latestRevision(): Promise<number> {
    return this.backend.latestRevision();
  }

  async changed(ms: number): Promise<void> {
    if (!this.#cancel) {
      // Any event of any key wakes the follower; the rows come from the log.
      const w = await this.backend.watch(FIRST_KEY, FROM_KEY, 0, () => this.#wake.wake());
      this.#cancel = () => w.cancel();
    }
    await this.#wake.wait(ms);
  }

  async close(): Promise<void> {
    this.#cancel?.();
    await this.backend.close();
  }
}
