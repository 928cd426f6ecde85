import type * as grpc from "@grpc/grpc-js";
import type { Backend } from "../backend/types.ts";
import type { LeaseManager } from "../lease/mod.ts";
import type { Logger } from "../log/mod.ts";
import {
  Code,
  type EtcdError,
  notSupported,
  toEtcdError,
  type Translator,
} from "../translator/mod.ts";

type Handler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

/** Adapts an async handler to grpc-js, answering errors with etcd's code and message. */
function unary<Req, Res>(fn: Handler<Req, Res>, logger: Logger): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    fn(call.request, call).then(
      (res) => callback(null, res),
      (err) => {
        const e: EtcdError = toEtcdError(err);
        if (e.code === Code.UNKNOWN || e.code === Code.UNAVAILABLE) {
          logger.error("request failed", { method: call.getPath(), error: e.message });
        }
        callback({ code: e.code, details: e.message } as grpc.ServiceError);
      },
    );
  };
}

function unsupported(what: string): grpc.handleUnaryCall<unknown, unknown> {
  return (_call, callback) => {
    const e = notSupported(what);
    callback({ code: e.code, details: e.message } as grpc.ServiceError);
  };
}

function unsupportedStream(what: string) {
  return (
    call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  ) => {
    const e = notSupported(what);
    call.emit("error", { code: e.code, details: e.message });
  };
}

const encoder = new TextEncoder();

export interface ServiceContext {
  translator: Translator;
  leases: LeaseManager;
  backend: Backend;
  logger: Logger;
  emulatedVersion: string;
  /** `http`, `https`, `unix` or `unixs`: how MemberList spells client URLs. */
  scheme: string;
}

export function kvService(ctx: ServiceContext) {
  const t = ctx.translator;
  return {
    Range: unary((r: any) => t.range(r), ctx.logger),
    Put: unary((r: any) => t.put(r), ctx.logger),
    DeleteRange: unary((r: any) => t.deleteRange(r), ctx.logger),
    Txn: unary((r: any) => t.txn(r), ctx.logger),
    Compact: unary((r: any) => t.compact(r), ctx.logger),
  };
}

export function leaseService(ctx: ServiceContext) {
  const leases = ctx.leases;
  const header = () => ({ revision: ctx.backend.currentRevision() });
  return {
    LeaseGrant: unary(async (r: { TTL: number; ID: number }) => {
      const lease = await leases.grant(r.ID, r.TTL);
      return { header: header(), ID: lease.id, TTL: lease.ttl };
    }, ctx.logger),
    LeaseRevoke: unary(async (r: { ID: number }) => {
      await leases.revoke(r.ID);
      return { header: header() };
    }, ctx.logger),
    LeaseKeepAlive: (call: grpc.ServerDuplexStream<{ ID: number }, unknown>) => {
      let ended = false;
      call.on("data", (r: { ID: number }) => {
        leases.keepAlive(r.ID).then(
          (ttl) => ended || call.write({ header: header(), ID: r.ID, TTL: ttl }),
          (err) => ctx.logger.warn("lease keep-alive failed", { error: String(err) }),
        );
      });
      call.on("end", () => {
        ended = true;
        call.end();
      });
      call.on("error", () => ended = true);
    },
    LeaseTimeToLive: unary(async (r: { ID: number; keys: boolean }) => {
      const t = await leases.timeToLive(r.ID);
      return {
        header: header(),
        ID: r.ID,
        TTL: t ? t.ttl : -1,
        grantedTTL: t?.grantedTtl ?? 0,
        keys: t && r.keys ? t.keys.map((k) => encoder.encode(k)) : [],
      };
    }, ctx.logger),
    LeaseLeases: unary(
      () => Promise.resolve({ header: header(), leases: leases.list().map((ID) => ({ ID })) }),
      ctx.logger,
    ),
  };
}

/** The client URL a caller used, from its HTTP/2 `:authority` (spec §2.9). */
export function memberUrls(authority: string, scheme: string): string[] {
  if (!authority) return [`${scheme}://127.0.0.1:2379`];
  if (authority.startsWith("#initially=[")) {
    return [authority.slice("#initially=[".length).replace(/\]$/, "").replaceAll(";", ",")];
  }
  return [`${scheme}://${authority}`];
}

export function clusterService(ctx: ServiceContext) {
  return {
    MemberList: unary((_r: unknown, call) => {
      const urls = memberUrls(call.getHost(), ctx.scheme);
      return Promise.resolve({
        header: { revision: 0 },
        members: [{ ID: 0, name: "kine", peerURLs: urls, clientURLs: urls, isLearner: false }],
      });
    }, ctx.logger),
    MemberAdd: unsupported("member add"),
    MemberRemove: unsupported("member remove"),
    MemberUpdate: unsupported("member update"),
    MemberPromote: unsupported("member promote"),
  };
}

export function maintenanceService(ctx: ServiceContext) {
  return {
    Status: unary(async () => {
      const s = await ctx.backend.status();
      return {
        header: { revision: 0 },
        version: ctx.emulatedVersion,
        dbSize: s.dbSize,
      };
    }, ctx.logger),
    Alarm: unsupported("alarm"),
    Defragment: unsupported("defragment"),
    Hash: unsupported("hash"),
    HashKV: unsupported("hash kv"),
    Snapshot: unsupportedStream("snapshot"),
    MoveLeader: unsupported("move leader"),
    Downgrade: unsupported("downgrade"),
  };
}

export function healthService() {
  const serving = { status: "SERVING" };
  return {
    Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, serving),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.write(serving),
  };
}
