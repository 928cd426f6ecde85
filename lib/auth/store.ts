/**
 * The auth store: the current {@link AuthState}, one {@link SharedRecord}
 * under a reserved key, so every kine on one database sees the same users,
 * roles and auth revision within the poll interval.
 */
import type { Backend } from "../backend/types.ts";
import { SharedRecord } from "../backend/shared_record.ts";
import type { Logger } from "../log/mod.ts";
import * as E from "./errors.ts";
import { rangePermitted } from "./perms.ts";
import { type AuthState, decodeState, EMPTY_STATE, encodeState, hasRootRole } from "./state.ts";
import type { TokenProvider } from "./tokens.ts";
import { RESERVED } from "../backend/keys.ts";

/**
 * Where the auth state lives: one of kine's own keys, out of every client's
 * reach (`backend/keys.ts`); stored where kine before byte keys kept it.
 */
export const AUTH_KEY = `${RESERVED}kine/auth`;

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
  readonly #record: SharedRecord<AuthState>;
  readonly #listeners = new Set<() => void>();

  constructor(private readonly backend: Backend, readonly options: AuthStoreOptions) {
    this.#record = new SharedRecord(
      backend,
      AUTH_KEY,
      { encode: encodeState, decode: decodeState },
      EMPTY_STATE,
      options.logger,
      (next, prev) => this.#adopted(next, prev),
    );
  }

  get state(): AuthState {
    return this.#record.value;
  }

  get tokens(): TokenProvider {
    return this.options.tokens;
  }

  start(): Promise<void> {
    return this.#record.start();
  }

  close(): void {
    this.#record.close();
    this.options.tokens.close();
  }

  /** Calls `fn` after every change of the state, local or from another server. */
  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #adopted(next: AuthState, prev: AuthState): void {
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
  update(change: (s: AuthState) => AuthState | undefined): Promise<AuthState> {
    return this.#record.update(change);
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
    if (this.state.enabled) await this.backend.linearize();
  }

  /**
   * Who is calling, judged by the fresh state (see {@link fresh}): from the
   * token, else (with `--client-cert-auth`) the client certificate's common
   * name; undefined when auth is off or the caller sent neither. A token that
   * does not verify is etcd's "invalid auth token".
   */
  async authInfo(caller: Caller): Promise<AuthInfo | undefined> {
    await this.fresh();
    if (!this.state.enabled) return undefined;
    if (caller.token) {
      const info = await this.options.tokens.info(caller.token);
      if (!info) throw E.invalidAuthToken();
      return { user: info.user, revision: info.revision ?? this.state.revision };
    }
    if (this.options.clientCertAuth && caller.commonName) {
      return { user: caller.commonName, revision: this.state.revision };
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
    const s = this.state;
    if (!s.enabled) return;
    if (!ai) throw E.userEmpty();
    if (ai.revision < s.revision) throw E.authOldRevision();
    if (!rangePermitted(s, ai.user, key, end, write)) throw E.permissionDenied();
  }

  /** etcd's IsAdminPermitted: the caller holds the `root` role. */
  checkAdmin(ai: AuthInfo | undefined): void {
    const s = this.state;
    if (!s.enabled) return;
    if (!ai || ai.user === "") throw E.userEmpty();
    const u = s.users.get(ai.user);
    if (!u) throw E.userNotFound();
    if (!hasRootRole(u)) throw E.permissionDenied();
  }

  /** True if the user still may read the range: for watches created earlier. */
  mayRead(user: string, key: Uint8Array, end: Uint8Array | undefined): boolean {
    const s = this.state;
    return !s.enabled || rangePermitted(s, user, key, end, false);
  }
}
