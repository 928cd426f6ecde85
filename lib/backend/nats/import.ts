/**
 * Rows written with their ids into a NATS bucket (kine migrate's target). A
 * revision is a stream sequence, which JetStream assigns: each row is
 * published with the stream's expected last sequence set to its id − 1, so it
 * lands exactly at its id or not at all, and publishes are pipelined in order.
 * An id the source does not hold (a compacted row, a gap) is taken by a filler
 * message on one internal key, purged after each batch, so the bucket ends
 * with the source's rows at the source's revisions and nothing else.
 *
 * @module
 */
import { headers, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { BackendOptions } from "../endpoint.ts";
import { dsnError } from "../errors.ts";
import type { Importer, ImportState } from "../import.ts";
import type { LeaseRecord, LogRecord } from "../types.ts";
import { retryUnready } from "./backend.ts";
import { leaseBucket, ROLE_PREFIX } from "./leases.ts";
import { Acks } from "./acks.ts";
import { encodeRecord } from "./codec.ts";
import { connectNats } from "./connect.ts";
import { encodeKey } from "./keys.ts";
import { type NatsOptions, parseNatsEndpoint } from "./options.ts";

/** The key of the filler messages: a gap tombstone (no watcher sees one) if one ever stays. */
const FILLER_KEY = "kine-migrate-filler";
/** Where the marker of a copy under way is kept: an entry no lease or role reader takes. */
const MARKER = `${ROLE_PREFIX}kine-migrate`;
/** Publishes in flight at once. */
const WINDOW = 512;
/** How long a publish waits for JetStream's ack before the batch fails. */
const ACK_TIMEOUT_MS = 10_000;

/** Connects and creates the buckets as kine does. */
export async function openNatsImporter(o: BackendOptions): Promise<Importer> {
  let nats: NatsOptions;
  try {
    nats = parseNatsEndpoint(o.endpoint);
  } catch (err) {
    throw dsnError((err as Error).message);
  }
  const nc = await connectNats(nats, o.tls, o.logger);
  try {
    const js = jetstream(nc, { timeout: 10_000 });
    const kvm = new Kvm(js);
    const config = { history: nats.revHistory, replicas: nats.replicas };
    await retryUnready(
      () => kvm.create(nats.bucket, { ...config, description: "Holds kine key/values" }),
      o.logger,
    );
    const leases = await retryUnready(
      () =>
        kvm.create(leaseBucket(nats.bucket), {
          ...config,
          history: 1,
          description: "Holds kine leases",
        }),
      o.logger,
    );
    return new NatsImporter(nc, await js.jetstreamManager(), leases, nats.bucket);
  } catch (err) {
    await nc.close();
    throw err;
  }
}

class NatsImporter implements Importer {
  readonly #stream: string;
  readonly #prefix: string;
  #head = -1;

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly leases: KV,
    bucket: string,
  ) {
    this.#stream = `KV_${bucket}`;
    this.#prefix = `$KV.${bucket}.`;
  }

  async state(): Promise<ImportState> {
    const { state } = await this.jsm.streams.info(this.#stream);
    this.#head = state.last_seq;
    const e = await this.leases.get(MARKER);
    return {
      rows: state.messages,
      head: state.last_seq,
      marker: e && e.operation === "PUT" ? e.string() : null,
    };
  }

  async setMarker(marker: string | null): Promise<void> {
    if (marker === null) await this.leases.purge(MARKER);
    else await this.leases.put(MARKER, marker);
  }

  keyError(key: string): string | undefined {
    try {
      encodeKey(key);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  }

  async importRows(rows: LogRecord[]): Promise<void> {
    if (this.#head < 0) await this.state();
    const filler = this.#prefix + encodeKey(FILLER_KEY);
    const fill = encodeRecord({
      created: false,
      deleted: true,
      createRevision: 0,
      prevRevision: 0,
      lease: 0,
      value: new Uint8Array(0),
      version: 0,
    });
    const acks = new Acks(this.nc, WINDOW, ACK_TIMEOUT_MS);
    let filled = false;
    try {
      const publish = async (subject: string, data: Uint8Array) => {
        // Only a full window waits (see Acks.room): an await per publish would flush each alone.
        if (acks.full) await acks.room();
        const h = headers();
        h.set("Nats-Expected-Last-Sequence", String(this.#head));
        this.nc.publish(subject, data, { reply: acks.next(), headers: h });
        this.#head++;
      };
      for (const r of rows) {
        if (r.id <= this.#head) continue;
        while (this.#head + 1 < r.id) {
          filled = true;
          await publish(filler, fill);
        }
        await publish(
          this.#prefix + encodeKey(r.name),
          encodeRecord({ ...r, value: r.value ?? new Uint8Array(0) }),
        );
      }
      await acks.all();
    } catch (err) {
      // What landed is a prefix in order; the next batch (or a resume) starts from the stream.
      this.#head = -1;
      throw err;
    } finally {
      acks.close();
    }
    if (filled) await this.jsm.streams.purge(this.#stream, { filter: filler });
  }

  async importLeases(leases: LeaseRecord[]): Promise<void> {
    for (const l of leases) await this.leases.put(String(l.id), JSON.stringify(l));
  }

  /** The compact revision travels as a row (kine's compaction record): nothing to add. */
  finish(_compactRevision: number): Promise<void> {
    return Promise.resolve();
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => {});
  }
}
