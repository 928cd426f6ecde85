/**
 * etcd's Auth service over the {@link AuthStore}: who may call what (every
 * change and both lists need `root`; a user may read itself and its own
 * roles), password hashing outside any lock, and `Authenticate` with
 * brute-force limits. Requests and answers are the wire messages.
 */
import type { Logger } from "../log/mod.ts";
import * as E from "./errors.ts";
import { bytesToName, nameToBytes } from "./bytes.ts";
import { LoginLimiter } from "./limiter.ts";
import type { PasswordPool } from "./passwords.ts";
import * as S from "./state.ts";
import type { AuthInfo, AuthStore, Caller } from "./store.ts";

const PERM_TYPES = ["READ", "WRITE", "READWRITE"] as const;
const EMPTY = new Uint8Array(0);

interface WirePermission {
  permType: string | number;
  key?: Uint8Array;
  range_end?: Uint8Array;
}

function permType(t: string | number): S.PermType {
  if (typeof t === "number") return PERM_TYPES[t] ?? "READ";
  return (PERM_TYPES as readonly string[]).includes(t) ? t as S.PermType : "READ";
}

/** The peer's address without its port, so reconnecting does not reset its count. */
function peerHost(peer: string): string {
  const m = /^(?:ipv[46]:)?\[?(.*?)\]?:\d+$/.exec(peer);
  return m ? m[1] : peer;
}

/** Bytes of a name a log line shows at most. */
const LOGGED_NAME_BYTES = 64;

/** The name for a log line: cut to {@link LOGGED_NAME_BYTES}, with its full length when cut. */
function logName(name: string): { user: string; user_bytes?: number } {
  const bytes = nameToBytes(name);
  if (bytes.length <= LOGGED_NAME_BYTES) return { user: name };
  return { user: bytesToName(bytes.subarray(0, LOGGED_NAME_BYTES)), user_bytes: bytes.length };
}

export class AuthApi {
  readonly #limiter = new LoginLimiter();
  #dummy?: Promise<string>;

  constructor(
    private readonly store: AuthStore,
    private readonly options: {
      bcryptCost: number;
      /** Where bcrypt runs. */
      passwords: PasswordPool;
      logger: Logger;
      /** The store's current revision, for response headers. */
      revision: () => number;
    },
  ) {}

  #header() {
    return { header: { revision: this.options.revision() } };
  }

  async #admin(caller: Caller): Promise<AuthInfo | undefined> {
    const ai = await this.store.authInfo(caller);
    this.store.checkAdmin(ai);
    return ai;
  }

  async #change(caller: Caller, change: (s: S.AuthState) => S.AuthState | undefined) {
    await this.#admin(caller);
    await this.store.update(change);
    return this.#header();
  }

  async authEnable(caller: Caller) {
    const r = await this.#change(caller, S.authEnable);
    this.options.logger.info("authentication enabled");
    return r;
  }

  async authDisable(caller: Caller) {
    const r = await this.#change(caller, S.authDisable);
    this.options.logger.info("authentication disabled");
    return r;
  }

  async authStatus(caller: Caller) {
    await this.#admin(caller);
    const s = this.store.state;
    return { ...this.#header(), enabled: s.enabled, authRevision: s.revision };
  }

  /**
   * Checks the password and issues a token. The limiter (limiter.ts) admits
   * the attempt before the check; a name nobody has is checked against a
   * dummy hash, so its answer takes as long as a wrong password's. Failures
   * are logged with the name cut short, once per window per peer and name,
   * never with the password.
   */
  async authenticate(caller: Caller, r: { name: string; password: string }) {
    await this.store.fresh();
    if (!this.store.state.enabled) throw E.authNotEnabled();
    const name = r.name ?? "";
    const peer = peerHost(caller.peer);
    const attempt = this.#limiter.begin(peer, name);
    if (!attempt) throw E.tooManyRequests();
    let user: S.User | undefined;
    let ok: boolean;
    try {
      if (attempt.delayMs > 0) await new Promise((r) => setTimeout(r, attempt.delayMs));
      user = this.store.state.users.get(name);
      const hash = user && !user.noPassword ? user.password : await this.#dummyHash();
      ok = await this.options.passwords.check(nameToBytes(r.password ?? ""), hash) &&
        user !== undefined && !user.noPassword;
    } catch (err) {
      attempt.abandoned();
      throw err;
    }
    if (!ok || !user) {
      const failures = attempt.failed();
      if (failures > 0) {
        this.options.logger.warn("authentication failed", { ...logName(name), peer, failures });
      }
      throw E.authFailed();
    }
    attempt.succeeded();
    // A password changed while it was being checked must not yield a token.
    const now = this.store.state;
    if (!now.enabled) throw E.authNotEnabled();
    if (now.users.get(name)?.password !== user.password) throw E.authFailed();
    const token = await this.store.tokens.assign(name, now.revision);
    return { ...this.#header(), token };
  }

  /** A hash no password matches, at the configured cost, for names nobody has. */
  #dummyHash(): Promise<string> {
    this.#dummy ??= this.options.passwords.hash(
      crypto.getRandomValues(new Uint8Array(32)),
      this.options.bcryptCost,
    ).catch((err) => {
      this.#dummy = undefined;
      throw err;
    });
    return this.#dummy;
  }

  async userAdd(
    caller: Caller,
    r: { name: string; password: string; options?: { no_password?: boolean } },
  ) {
    await this.#admin(caller);
    const noPassword = r.options?.no_password === true;
    const hash = noPassword ? "" : await this.#hash(r.password);
    return this.#change(caller, (s) => S.userAdd(s, r.name, hash, noPassword));
  }

  #hash(password: string | undefined): Promise<string> {
    return this.options.passwords.hash(nameToBytes(password ?? ""), this.options.bcryptCost);
  }

  async userGet(caller: Caller, r: { name: string }) {
    const ai = await this.store.authInfo(caller);
    // A user may read its own entry.
    if (ai?.user !== r.name) this.store.checkAdmin(ai);
    const u = this.store.state.users.get(r.name);
    if (!u) throw E.userNotFound();
    return { ...this.#header(), roles: u.roles };
  }

  async userList(caller: Caller) {
    await this.#admin(caller);
    const users = [...this.store.state.users.keys()].sort();
    return { ...this.#header(), users };
  }

  userDelete(caller: Caller, r: { name: string }) {
    return this.#change(caller, (s) => S.userDelete(s, r.name));
  }

  async userChangePassword(caller: Caller, r: { name: string; password: string }) {
    await this.#admin(caller);
    const hash = await this.#hash(r.password);
    return this.#change(caller, (s) => S.userChangePassword(s, r.name, hash));
  }

  userGrantRole(caller: Caller, r: { user: string; role: string }) {
    return this.#change(caller, (s) => S.userGrantRole(s, r.user, r.role));
  }

  userRevokeRole(caller: Caller, r: { name: string; role: string }) {
    return this.#change(caller, (s) => S.userRevokeRole(s, r.name, r.role));
  }

  roleAdd(caller: Caller, r: { name: string }) {
    return this.#change(caller, (s) => S.roleAdd(s, r.name));
  }

  async roleGet(caller: Caller, r: { role: string }) {
    const ai = await this.store.authInfo(caller);
    const s = this.store.state;
    // A user may read the roles it holds.
    if (!ai || !s.users.get(ai.user)?.roles.includes(r.role)) this.store.checkAdmin(ai);
    const role = s.roles.get(r.role);
    if (!role) throw E.roleNotFound();
    const perms = role.name === S.ROOT ? [S.ROOT_PERMISSION] : role.perms;
    return {
      ...this.#header(),
      perm: perms.map((p) => ({ permType: p.type, key: p.key, range_end: p.end })),
    };
  }

  async roleList(caller: Caller) {
    await this.#admin(caller);
    const roles = [...this.store.state.roles.keys()].sort();
    return { ...this.#header(), roles };
  }

  roleDelete(caller: Caller, r: { role: string }) {
    return this.#change(caller, (s) => S.roleDelete(s, r.role));
  }

  roleGrantPermission(caller: Caller, r: { name: string; perm?: WirePermission | null }) {
    const perm = r.perm
      ? {
        type: permType(r.perm.permType),
        key: r.perm.key ?? EMPTY,
        end: r.perm.range_end ?? EMPTY,
      }
      : undefined;
    return this.#change(caller, (s) => S.roleGrantPermission(s, r.name, perm));
  }

  roleRevokePermission(
    caller: Caller,
    r: { role: string; key?: Uint8Array; range_end?: Uint8Array },
  ) {
    return this.#change(
      caller,
      (s) => S.roleRevokePermission(s, r.role, r.key ?? EMPTY, r.range_end ?? EMPTY),
    );
  }
}
