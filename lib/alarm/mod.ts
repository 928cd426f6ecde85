/**
 * etcd's alarms and space quota. Alarms (NOSPACE, CORRUPT, and NONE, which
 * etcd 3.4 also lets a client raise) are one {@link SharedRecord} under a
 * reserved key, so every kine on one store raises, lists and disarms the
 * same ones, as the members of one etcd cluster do. With a quota
 * (`--quota-backend-bytes`), the store's size (`Status.dbSize`, what etcd
 * compares: the file, free pages included) is read every second; a write
 * that would take it to the quota raises NOSPACE and is refused.
 *
 * What is refused is what etcd 3.4 refuses:
 * - over the quota, or while NOSPACE is raised: Put, a Txn with a put in a
 *   branch, LeaseGrant (`RESOURCE_EXHAUSTED` "etcdserver: mvcc: database
 *   space exceeded"); deletes, compactions, reads and delete-only txns pass,
 *   so an operator can make room, defragment, then disarm;
 * - while CORRUPT is raised: every write, Compact, LeaseGrant and
 *   LeaseRevoke (`DATA_LOSS` "etcdserver: corrupt cluster"); reads pass.
 *
 * @module
 */
import { SharedRecord } from "../backend/shared_record.ts";
import type { ChangeStream, Maintenance, MvccStore } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import type { Registry } from "../metrics/mod.ts";
import { corrupt, noSpace } from "../translator/errors.ts";
export * from "./cost.ts";
import { RESERVED } from "../backend/keys.ts";

/** Where the alarms live: one of kine's own keys, out of every client's reach (`backend/keys.ts`). */
export const ALARM_KEY = `${RESERVED}kine/alarms`;

/** etcd's AlarmType, as the wire spells it. */
export type AlarmType = "NONE" | "NOSPACE" | "CORRUPT";
const ALARM_TYPES: readonly AlarmType[] = ["NONE", "NOSPACE", "CORRUPT"];

/** etcd's AlarmMember: which member raised which alarm. */
export interface AlarmMember {
  memberID: number;
  alarm: AlarmType;
}

/** How often the store's size is read while a quota is set (ms). */
const SIZE_CHECK_MS = 1000;

const codec = {
  encode: (alarms: AlarmMember[]) => new TextEncoder().encode(JSON.stringify(alarms)),
  decode: (bytes: Uint8Array): AlarmMember[] => {
    const parsed = JSON.parse(new TextDecoder().decode(bytes));
    if (!Array.isArray(parsed)) throw new Error("not a list of alarms");
    return parsed.map((a) => ({ memberID: Number(a.memberID), alarm: a.alarm }));
  },
};

/** Alarms in etcd's listing order here: by type, then member. */
function sorted(alarms: AlarmMember[]): AlarmMember[] {
  return alarms.toSorted((a, b) =>
    ALARM_TYPES.indexOf(a.alarm) - ALARM_TYPES.indexOf(b.alarm) || a.memberID - b.memberID
  );
}

const same = (a: AlarmMember, b: AlarmMember) => a.memberID === b.memberID && a.alarm === b.alarm;

export interface AlarmOptions {
  /** `--quota-backend-bytes`; 0 = no quota. */
  quotaBytes: number;
  logger: Logger;
  /** Where `etcd_server_quota_backend_bytes` and `kine_alarm_active` go. */
  registry?: Registry;
}

/** The alarms of every kine on one store, and the quota of this one. */
export class Alarms {
  readonly #record: SharedRecord<AlarmMember[]>;
  /** The store's size as last read (changed). */
  #measured = 0;
  /**
   * What this server let writes add since the reading last changed: MySQL
   * reports table statistics, which may lag behind the writes for a while.
   */
  #added = 0;
  #timer?: ReturnType<typeof setInterval>;
  #measuring?: Promise<void>;

  constructor(
    private readonly backend: MvccStore & ChangeStream & Maintenance,
    private readonly o: AlarmOptions,
  ) {
    this.#record = new SharedRecord(backend, ALARM_KEY, codec, [], o.logger, (next, prev) => {
      for (const type of ALARM_TYPES) {
        const was = prev.some((a) => a.alarm === type);
        const is = next.some((a) => a.alarm === type);
        if (was !== is) o.logger.warn(is ? "alarm raised" : "alarm disarmed", { alarm: type });
      }
    });
    o.registry?.gauge({
      name: "etcd_server_quota_backend_bytes",
      help: "Current backend storage quota size in bytes (0 = none).",
      collect: () => o.quotaBytes,
    });
    o.registry?.gauge({
      name: "kine_alarm_active",
      help: "1 while an alarm of the type (NOSPACE, CORRUPT) is raised by any server of the store",
      labelNames: ["alarm"] as const,
      collect: (g) => {
        for (const type of ["NOSPACE", "CORRUPT"] as const) {
          g.labels(type).set(this.#record.value.some((a) => a.alarm === type) ? 1 : 0);
        }
      },
    });
  }

  /** Reads the alarms and follows them; with a quota, starts reading the store's size. */
  async start(): Promise<void> {
    await this.#record.start();
    if (this.o.quotaBytes <= 0) return;
    await this.#measure();
    this.#timer = setInterval(() => {
      this.#measuring ??= this.#measure().finally(() => this.#measuring = undefined);
    }, SIZE_CHECK_MS);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    await this.#measuring;
    this.#record.close();
  }

  async #measure(): Promise<void> {
    try {
      const size = (await this.backend.status()).dbSize;
      if (size !== this.#measured) [this.#measured, this.#added] = [size, 0];
    } catch (err) {
      this.o.logger.warn("reading the store's size for the quota failed", { error: String(err) });
    }
  }

  /** The raised alarms of one type; NONE lists every alarm, as etcd does. */
  list(type: AlarmType = "NONE"): AlarmMember[] {
    const all = this.#record.value;
    return sorted(type === "NONE" ? all : all.filter((a) => a.alarm === type));
  }

  /** Raises an alarm (again: no change); returns it, as etcd answers. */
  async activate(member: AlarmMember): Promise<AlarmMember> {
    await this.#record.update((alarms) =>
      alarms.some((a) => same(a, member)) ? undefined : [...alarms, member]
    );
    return member;
  }

  /** Disarms an alarm; returns it, or undefined when it was not raised. */
  async deactivate(member: AlarmMember): Promise<AlarmMember | undefined> {
    let found: AlarmMember | undefined;
    await this.#record.update((alarms) => {
      found = alarms.find((a) => same(a, member));
      return found ? alarms.filter((a) => !same(a, member)) : undefined;
    });
    return found;
  }

  /** etcd's Status `errors`: each alarm in protobuf text form. */
  errors(): string[] {
    return this.list().map((a) =>
      (a.memberID ? `memberID:${a.memberID} ` : "") +
      (a.alarm !== "NONE" ? `alarm:${a.alarm} ` : "")
    );
  }

  /**
   * Refuses a request as etcd would with the alarms raised and the store at
   * its last measured size; `cost` is etcd's estimate of the bytes a write
   * adds. Over the quota it raises NOSPACE for `memberID` (in the background:
   * the refusal does not wait for it).
   */
  check(cost: number, memberID: number): void {
    const adds = cost > 0;
    const quota = this.o.quotaBytes;
    if (adds && quota > 0 && this.#measured + this.#added + cost >= quota) {
      const member: AlarmMember = { memberID, alarm: "NOSPACE" };
      if (!this.#record.value.some((a) => same(a, member))) {
        this.activate(member).catch((err) =>
          this.o.logger.warn("raising NOSPACE failed", { error: String(err) })
        );
      }
      throw noSpace();
    }
    const alarms = this.#record.value;
    if (alarms.some((a) => a.alarm === "CORRUPT")) throw corrupt();
    if (adds && alarms.some((a) => a.alarm === "NOSPACE")) throw noSpace();
    // Counted until the reading changes, so a fast writer cannot run a second past the quota.
    this.#added += cost;
  }
}
