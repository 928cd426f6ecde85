import type * as grpc from "@grpc/grpc-js";
import { LEASE_COST, type WriteGate } from "../alarm/mod.ts";
import type { AccessGuard, Check } from "../auth/mod.ts";
import type { Backend } from "../backend/types.ts";
import { keyToBytes } from "../backend/keys.ts";
import type { LeaseManager } from "../lease/mod.ts";
import type { Logger } from "../log/mod.ts";
import { callerOf } from "./caller.ts";
import { MalformedRequest } from "./proto.ts";
import type { Maintenance } from "../translator/maintenance.ts";
import {
  Code,
  type EtcdError,
  notSupported,
  toEtcdError,
  type Translator,
} from "../translator/mod.ts";

type Handler<Req, Res> = (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

/**
 * Adapts an async handler to grpc-js, answering errors with etcd's code and
 * message. `check` (auth) runs first; while auth is off it returns nothing and
 * costs no extra turn.
 */
export function unary<Req, Res>(
  fn: Handler<Req, Res>,
  logger: Logger,
  check?: Check<Req>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    const request = call.request as unknown;
    if (request instanceof MalformedRequest) {
      const e = request.error;
      callback({ code: e.code, details: e.message } as grpc.ServiceError);
      return;
    }
    const checked = check?.(() => callerOf(call), call.request);
    (checked ? checked.then(() => fn(call.request, call)) : fn(call.request, call)).then(
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

/**
 * Answers a call kine does not serve; with auth on, etcd checks for `root`
 * first, so a non-root caller hears "permission denied" instead.
 */
function refuse(
  call: Parameters<typeof callerOf>[0],
  what: string,
  ctx: ServiceContext,
  send: (e: EtcdError) => void,
): void {
  const fail = (err: unknown) => send(toEtcdError(err));
  const checked = ctx.guard.admin(() => callerOf(call), undefined);
  if (checked) checked.then(() => fail(notSupported(what)), fail);
  else fail(notSupported(what));
}

function unsupported(what: string, ctx: ServiceContext): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) =>
    refuse(
      call,
      what,
      ctx,
      (e) => callback({ code: e.code, details: e.message } as grpc.ServiceError),
    );
}

/**
 * Adapts an async generator of responses to a grpc-js server stream: `check`
 * (auth) first, then writes each one, waits while the transport reports back-pressure, stops pulling
 * (so the generator stops its reads) when the client cancels, and ends the
 * call with etcd's code and message if the generator throws.
 */
function serverStream<Req, Res>(
  fn: (request: Req) => AsyncIterable<Res>,
  logger: Logger,
  check?: Check<Req>,
): grpc.handleServerStreamingCall<Req, Res> {
  return async (call) => {
    let cancelled = false;
    let resume: (() => void) | undefined;
    const wake = () => {
      resume?.();
      resume = undefined;
    };
    call.on("cancelled", () => {
      cancelled = true;
      wake();
    });
    call.on("drain", wake);
    try {
      await check?.(() => callerOf(call), call.request);
      for await (const response of fn(call.request)) {
        if (cancelled) return;
        if (!call.write(response)) await new Promise<void>((r) => resume = r);
        if (cancelled) return;
      }
      call.end();
    } catch (err) {
      if (cancelled) return;
      const e: EtcdError = toEtcdError(err);
      if (e.code === Code.UNKNOWN || e.code === Code.UNAVAILABLE) {
        logger.error("request failed", { method: call.getPath(), error: e.message });
      }
      call.emit("error", { code: e.code, details: e.message });
    }
  };
}

export interface ServiceContext {
  translator: Translator;
  maintenance: Maintenance;
  leases: LeaseManager;
  backend: Backend;
  logger: Logger;
  /** `http`, `https`, `unix` or `unixs`: how MemberList spells client URLs. */
  scheme: string;
  /** Auth checks (lib/auth); each passes at once while auth is off. */
  guard: AccessGuard;
  /** Alarms and the space quota (lib/alarm), before a lease is granted or revoked. */
  gate: WriteGate;
}

export function kvService(ctx: ServiceContext) {
  const t = ctx.translator;
  const g = ctx.guard;
  return {
    Range: unary((r: any) => t.range(r), ctx.logger, g.range),
    Put: unary((r: any) => t.put(r), ctx.logger, g.put),
    DeleteRange: unary((r: any) => t.deleteRange(r), ctx.logger, g.deleteRange),
    Txn: unary((r: any) => t.txn(r), ctx.logger, g.txn),
    Compact: unary((r: any) => t.compact(r), ctx.logger, g.authenticated),
    RangeStream: serverStream((r: any) => t.rangeStream(r), ctx.logger, g.range),
  };
}

export function leaseService(ctx: ServiceContext) {
  const leases = ctx.leases;
  const header = () => ({ revision: ctx.backend.currentRevision() });
  return {
    LeaseGrant: unary(
      async (r: { TTL: number; ID: number }) => {
        ctx.gate(LEASE_COST);
        const lease = await leases.grant(r.ID, r.TTL);
        return { header: header(), ID: lease.id, TTL: lease.ttl };
      },
      ctx.logger,
      ctx.guard.authenticated,
    ),
    LeaseRevoke: unary(
      async (r: { ID: number }) => {
        ctx.gate(0);
        await leases.revoke(r.ID);
        return { header: header() };
      },
      ctx.logger,
      ctx.guard.leaseRevoke,
    ),
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
    LeaseTimeToLive: unary(
      async (r: { ID: number; keys: boolean }) => {
        const t = await leases.timeToLive(r.ID);
        return {
          header: header(),
          ID: r.ID,
          TTL: t ? t.ttl : -1,
          grantedTTL: t?.grantedTtl ?? 0,
          keys: t && r.keys ? t.keys.map(keyToBytes) : [],
        };
      },
      ctx.logger,
      ctx.guard.leaseTimeToLive,
    ),
    LeaseLeases: unary(
      async () => ({ header: header(), leases: (await leases.list()).map((ID) => ({ ID })) }),
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
  const m = ctx.maintenance;
  return {
    MemberList: unary((_r: unknown, call) => {
      const urls = memberUrls(call.getHost(), ctx.scheme);
      const header = m.header();
      return Promise.resolve({
        header,
        members: [{
          ID: header.member_id,
          name: "kine",
          peerURLs: urls,
          clientURLs: urls,
          isLearner: false,
        }],
      });
    }, ctx.logger),
    MemberAdd: unsupported("member add", ctx),
    MemberRemove: unsupported("member remove", ctx),
    MemberUpdate: unsupported("member update", ctx),
    MemberPromote: unsupported("member promote", ctx),
  };
}

export function maintenanceService(ctx: ServiceContext) {
  const m = ctx.maintenance;
  const g = ctx.guard;
  return {
    Status: unary(() => m.status(), ctx.logger),
    Alarm: unary((r: any) => m.alarm(r), ctx.logger, g.admin),
    Defragment: unary(() => m.defragment(), ctx.logger, g.admin),
    Hash: unary(() => m.hash(), ctx.logger, g.admin),
    HashKV: unary((r: { revision: number }) => m.hashKV(r), ctx.logger, g.admin),
    Snapshot: serverStream(() => m.snapshot(), ctx.logger, g.admin),
    MoveLeader: unsupported("move leader", ctx),
    Downgrade: unsupported("downgrade", ctx),
  };
}

export function healthService() {
  const serving = { status: "SERVING" };
  return {
    Check: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => callback(null, serving),
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.write(serving),
  };
}
