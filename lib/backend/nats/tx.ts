/**
 * A txn's view of the NATS index for the shared txn logic (`TxnRunner`):
 * reads come from the index; a write is a publish that JetStream accepts only
 * if the key's last message is still the one the txn read. So a txn that
 * compares and writes one key is atomic across processes; losing the race is a
 * {@link Conflict}, and the caller runs the txn again.
 *
 * @module
 */
import type { LogRow, LogTx, NewRow, Revisions } from "../logstructured/log.ts";
import { encodeRecord } from "./codec.ts";
import type { Replica } from "./replica.ts";

/** Publishes a record of a key if the key's last sequence is `expected`; returns its sequence. */
export type Publish = (key: string, data: Uint8Array, expected: number) => Promise<number>;

/** Another writer changed the key first; `actual` is the key's last sequence now. */
export class Conflict extends Error {
  constructor(readonly actual: number) {
    super("wrong last sequence");
  }
}

const EMPTY = new Uint8Array(0);

export class NatsTx implements LogTx {
  /** The last sequence of each key as this txn first read it. */
  readonly #expected = new Map<string, number>();

  constructor(private readonly replica: Replica, private readonly publish: Publish) {}

  revisions(): Revisions {
    return this.replica.revisions();
  }

  list(start: string, end: string | null, revision: number, limit: number, keysOnly: boolean) {
    return this.replica.list(start, end, revision, limit, keysOnly);
  }

  count(start: string, end: string | null, revision: number) {
    return this.replica.count(start, end, revision);
  }

  leased(revision: number) {
    return this.replica.leased(revision);
  }

  latest(key: string): LogRow | null {
    // Read together, synchronously: the row compared and the sequence the write expects.
    if (!this.#expected.has(key)) this.#expected.set(key, this.replica.lastSeq(key));
    return this.replica.latest(key);
  }

  async append(row: NewRow): Promise<number> {
    const expected = this.#expected.get(row.name) ?? this.replica.lastSeq(row.name);
    const record = encodeRecord({ ...row, value: row.value ?? EMPTY });
    const seq = await this.publish(row.name, record, expected);
    this.#expected.set(row.name, seq);
    return seq;
  }
}
