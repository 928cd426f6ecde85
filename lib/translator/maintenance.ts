/**
 * etcd's Maintenance service as a single-member etcd answers it: Status,
 * Alarm, Defragment, Hash/HashKV and Snapshot, independent of the transport.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { AlarmMember, Alarms, AlarmType } from "../alarm/mod.ts";
import type { Backend } from "../backend/types.ts";
import { writeSqliteSnapshot } from "../backend/sql/sqlite_snapshot.ts";

/** The ids a member reports in every Maintenance and Cluster header. */
export interface MemberIdentity {
  clusterId: number;
  memberId: number;
}

/** The fields of etcd's ResponseHeader. */
export interface WireFullHeader {
  cluster_id: number;
  member_id: number;
  revision: number;
  raft_term: number;
}

/** 64-bit FNV-1a folded to 53 bits, so the id survives a JavaScript number. */
function id53(text: string): number {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) {
    h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  }
  return Number(BigInt.asUintN(53, h ^ (h >> 53n))) || 1;
}

/**
 * Stable ids: the cluster is the datastore (the endpoint without credentials
 * or parameters, so every kine on one database reports one cluster), the
 * member is this server's client URL in it. Both survive restarts.
 */
export function memberIdentity(endpoint: string, clientUrl: string): MemberIdentity {
  const datastore = endpoint.replace(/\/\/[^/@]*@/, "//").replace(/\?.*$/, "");
  const clusterId = id53(`kine cluster ${datastore}`);
  return { clusterId, memberId: id53(`kine member ${clusterId} ${clientUrl}`) };
}

/** Bytes of a snapshot per SnapshotResponse. */
export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/** The Maintenance RPCs over a {@link Backend}. */
export class Maintenance {
  constructor(
    private readonly backend: Backend,
    /** Known once the server is bound, before it answers any call. */
    private readonly identity: () => MemberIdentity,
    private readonly emulatedVersion: string,
    private readonly alarms: Alarms,
  ) {}

  /** A header at `revision` (default: the current one) with this member's ids. */
  header(revision = this.backend.currentRevision()): WireFullHeader {
    return {
      cluster_id: this.identity().clusterId,
      member_id: this.identity().memberId,
      revision,
      raft_term: 1,
    };
  }

  /** A leader with term 1 whose raft index is the revision; sizes from the engine. */
  async status() {
    const s = await this.backend.status();
    return {
      header: this.header(s.revision),
      version: this.emulatedVersion,
      dbSize: s.dbSize,
      dbSizeInUse: s.dbSizeInUse,
      leader: this.identity().memberId,
      raftIndex: s.revision,
      raftTerm: 1,
      raftAppliedIndex: s.revision,
      errors: this.alarms.errors(),
      isLearner: false,
    };
  }

  /**
   * Lists, raises or disarms an alarm, as etcd 3.4 answers: GET lists those of
   * the type (NONE: all), ACTIVATE answers the alarm raised (also when it
   * already was), DEACTIVATE the alarm disarmed, or none.
   */
  async alarm(r: { action: string; memberID: number; alarm: AlarmType }) {
    const member: AlarmMember = { memberID: Number(r.memberID ?? 0), alarm: r.alarm ?? "NONE" };
    let alarms: AlarmMember[];
    if (r.action === "ACTIVATE") alarms = [await this.alarms.activate(member)];
    else if (r.action === "DEACTIVATE") {
      const gone = await this.alarms.deactivate(member);
      alarms = gone ? [gone] : [];
    } else alarms = this.alarms.list(member.alarm);
    return { header: this.header(), alarms };
  }

  async defragment() {
    await this.backend.defragment();
    return { header: this.header() };
  }

  /** etcd hashes its whole database file; kine the key space at the current revision. */
  async hash() {
    const h = await this.backend.hashKV(0);
    return { header: this.header(h.currentRevision), hash: h.hash };
  }

  async hashKV(r: { revision: number }) {
    const h = await this.backend.hashKV(r.revision);
    return {
      header: this.header(h.currentRevision),
      hash: h.hash,
      compact_revision: h.compactRevision,
      hash_revision: h.revision,
    };
  }

  /**
   * The store as a SQLite database file (see sqlite_snapshot.ts), written to a
   * temporary file, then sent in chunks with the bytes remaining after each,
   * and, as etcd ends its snapshots, one last message with the file's SHA-256
   * (etcdctl checks it is there; SQLite ignores the 32 bytes after its pages,
   * so the saved file is served as it is). The file is removed when the
   * stream ends, fails or is cancelled.
   */
  async *snapshot() {
    const dir = await Deno.makeTempDir({ prefix: "kine-snapshot-" });
    try {
      const path = join(dir, "snapshot.db");
      const revision = await writeSqliteSnapshot(this.backend, path);
      using file = await Deno.open(path);
      let remaining = (await file.stat()).size;
      const header = this.header(revision);
      const sha = createHash("sha256");
      while (remaining > 0) {
        const blob = new Uint8Array(Math.min(SNAPSHOT_CHUNK_BYTES, remaining));
        let read = 0;
        while (read < blob.length) {
          const n = await file.read(blob.subarray(read));
          if (n === null) throw new Error("snapshot file shrank while it was sent");
          read += n;
        }
        remaining -= blob.length;
        sha.update(blob);
        yield { header, remaining_bytes: remaining, blob };
      }
      yield { header, remaining_bytes: 0, blob: new Uint8Array(sha.digest()) };
    } finally {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
}
