/**
 * The auth store: the current {@link AuthState}, kept in one row of the
 * revision log under a reserved key (below every client key, so no client
 * range or watch reaches it; upstream kine never reads it), and followed by a
 * backend watch, so every kine on one database sees the same users, roles
 * and auth revision within the poll interval. A change is a compare-and-swap
 * on that key's mod revision, retried on the newest state when another
 * server wrote first: single-key txns, which every backend supports.
 */
import type { Backend, Event, WatchResult } from "../backend/types.ts";
import { plainRange } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import * as E from "./errors.ts";
import { rangePermitted } from "./perms.ts";
import { type AuthState, decodeState, EMPTY_STATE, encodeState, hasRootRole } from "./state.ts";
import type { TokenProvider } from "./tokens.ts";

/** Where the auth state lives: below `CLIENT_KEYS_START` (lib/translator/keys.ts). */
export const AUTH_KEY = "\x01kine/auth";

/** What the transport knows about a caller (see lib/server/caller.ts). */
export interface Caller {
  /** The `token` (or `authorization`) metadata value. */
  token?: string;
  /** Common name of a verified client certificate. */
  commonName?: string;
  /** Peer address, for rate limiting and logs. */
  peer: string;
}

/** An authenticated caller: a user name and the auth revision its credential carries. */
export interface AuthInfo {
  user: string;
  revision: number;
}

export interface AuthStoreOptions {
  tokens: TokenProvider;
  /** Use a verified client certificate's common name as the user when no token is sent. */
  clientCertAuth: boolean;
  logger: Logger;
}

export class AuthStore {
  #state: AuthState = EMPTY_STATE;
  /** Mod revision of the stored state; 0 while nothing is stored. */
  #mod = 0;
  #watch?: WatchResult;
  readonly #listeners = new Set<() => void>();

  constructor(private readonly backend: Backend, readonly options: AuthStoreOptions) {}

  get state(): AuthState {
    return this.#state;
  }

  get tokens(): TokenProvider {
    return this.options.tokens;
  }

  async start(): Promise<void> {
    const read = await this.backend.range(plainRange(AUTH_KEY, ""));
    if (read.kvs[0]) this.#adopt(read.kvs[0].value, read.kvs[0].modRevision);
    this.#watch = await this.backend.watch(
      AUTH_KEY,
      "",
      read.revision + 1,
      (events) => this.#onEvents(events),
    );
  }

  close(): void {
    this.#watch?.cancel();
    this.options.tokens.close();
  }

  /** Calls `fn` after every change of the state, local or from another server. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #onEvents(events: Event[]): void {
    for (const e of events) {
      if (e.type === "put" && e.kv.modRevision > this.#mod) {
        this.#adopt(e.kv.value, e.kv.modRevision);
      }
    }
  }

  #adopt(value: Uint8Array, mod: number): void {
    let next: AuthState;
    try {
      next = decodeState(value);
    } catch (err) {
      this.options.logger.error("ignoring unreadable auth state", { error: String(err) });
      return;
    }
    const prev = this.#state;
    this.#state = next;
    this.#mod = mod;
    // Tokens of a user whose password changed or who is gone stop working, on every server.
    const tokens = this.options.tokens;
    if (prev.enabled && !next.enabled) tokens.clear();
    for (const [name, u] of prev.users) {
      if (next.users.get(name)?.password !== u.password) tokens.invalidateUser(name);
    }
    for (const fn of this.#listeners) fn();
  }

  /**
   * Applies `change` to the newest state and stores the result; `change`
   * returns undefined when there is nothing to do, and may run more than once.
   */
  async update(change: (s: AuthState) => AuthState | undefined): Promise<AuthState> {
    for (;;) {
      const base = this.#state;
      const mod = this.#mod;
      const next = change(base);
      if (!next) return base;
      const value = encodeState(next);
      const result = await this.backend.txn({
        compare: [{ key: AUTH_KEY, end: "", target: "mod", result: "equal", operand: mod }],
        success: [{
          type: "put",
          key: AUTH_KEY,
          value,
          lease: 0,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        }],
        failure: [{ type: "range", request: plainRange(AUTH_KEY, "") }],
      });
      if (result.succeeded) {
        if (result.revision > this.#mod) this.#adopt(value, result.revision);
        return next;
      }
      // Another server changed it first: take its state and try again on top of it.
      const failed = result.responses[0];
      const kv = failed?.type === "range" ? failed.result.kvs[0] : undefined;
      if (kv && kv.modRevision > this.#mod) this.#adopt(kv.value, kv.modRevision);
    }
  }

  /**
   * While auth is on, resolves once this process has applied every write
   * committed to the store before the call (the backend's ReadIndex), so the
   * state judges a request by every auth change any server acknowledged
   * before it began. The state follows the auth key through a backend watch,
   * whose events are handed over synchronously as a revision is applied:
   * applied means this state has seen it. While auth is off it waits for
   * nothing.
   */
  async fresh(): Promise<void> {
    if (this.#state.enabled) await this.backend.linearize();
  }

  /**
   * Who is calling, judged by the fresh state (see {@link fresh}): from the
   * token, else (with `--client-cert-auth`) the client certificate's common
   * name; undefined when auth is off or the caller sent neither. A token that
   * does not verify is etcd's "invalid auth token".
   */
  async authInfo(caller: Caller): Promise<AuthInfo | undefined> {
    await this.fresh();
    if (!this.#state.enabled) return undefined;
    if (caller.token) {
      const info = await this.options.tokens.info(caller.token);
      if (!info) throw E.invalidAuthToken();
      return { user: info.user, revision: info.revision ?? this.#state.revision };
    }
    if (this.options.clientCertAuth && caller.commonName) {
      return { user: caller.commonName, revision: this.#state.revision };
    }
    return undefined;
  }

  /** etcd's isOpPermitted: read (or write) access to a key or range; throws etcd's error. */
  checkRange(
    ai: AuthInfo | undefined,
    key: Uint8Array,
    end: Uint8Array | undefined,
    write: boolean,
  ): void {
    const s = this.#state;
    if (!s.enabled) return;
    if (!ai) throw E.userEmpty();
    if (ai.revision < s.revision) throw E.authOldRevision();
    if (!rangePermitted(s, ai.user, key, end, write)) throw E.permissionDenied();
  }

  /** etcd's IsAdminPermitted: the caller holds the `root` role. */
  checkAdmin(ai: AuthInfo | undefined): void {
    const s = this.#state;
    if (!s.enabled) return;
    if (!ai || ai.user === "") throw E.userEmpty();
    const u = s.users.get(ai.user);
    if (!u) throw E.userNotFound();
    if (!hasRootRole(u)) throw E.permissionDenied();
  }

  /** True if the user still may read the range: for watches created earlier. */
  mayRead(user: string, key: Uint8Array, end: Uint8Array | undefined): boolean {
    const s = this.#state;
    return !s.enabled || rangePermitted(s, user, key, end, false);
  }
}
