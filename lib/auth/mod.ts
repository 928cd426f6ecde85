/**
 * etcd authentication and role-based access for kine: users, roles,
 * key-range permissions, simple and JWT tokens, TLS common-name users.
 *
 * - `state.ts`: the users/roles value and etcd's rules for changing it
 * - `store.ts`: where that value lives (one reserved row, shared by every
 *   kine on the database) and who a caller is
 * - `perms.ts`: range permission checks; `guard.ts`: which checks each
 *   KV/Lease/Watch/Maintenance request needs
 * - `api.ts`: the Auth service; `tokens.ts`, `limiter.ts`, `passwords.ts`
 *   (bcrypt on worker threads, `bcrypt_worker.ts`); `bytes.ts`: names and
 *   passwords as the bytes sent
 *
 * @module
 */
import type { Backend } from "../backend/types.ts";
import type { Logger } from "../log/mod.ts";
import { AuthApi } from "./api.ts";
import { AccessGuard } from "./guard.ts";
import { AuthStore } from "./store.ts";
import { DEFAULT_BCRYPT_COST, PasswordPool } from "./passwords.ts";
import { tokenProvider } from "./tokens.ts";

export { AuthApi } from "./api.ts";
export { AccessGuard, type Check, REVOKED_REASON } from "./guard.ts";
export { AUTH_KEY, type Caller } from "./store.ts";
export { DEFAULT_BCRYPT_COST } from "./passwords.ts";
export { bytesToName, nameToBytes } from "./bytes.ts";
export { TokenOptionsError } from "./tokens.ts";

export interface AuthOptions {
  backend: Backend;
  /** Keys attached to a lease. */
  leaseKeys: (id: number) => Promise<string[]>;
  /** etcd's `--auth-token`: `simple` or `jwt,pub-key=…,priv-key=…,sign-method=…[,ttl=…]`. */
  authToken: string;
  /** etcd's `--auth-token-ttl`, seconds (simple tokens). */
  authTokenTtl: number;
  clientCertAuth: boolean;
  bcryptCost: number;
  logger: Logger;
}

export interface Auth {
  api: AuthApi;
  guard: AccessGuard;
  close(): void;
}

/** Loads the auth state and follows it; `close()` stops following. */
export async function startAuth(o: AuthOptions): Promise<Auth> {
  let bcryptCost = o.bcryptCost;
  if (!(bcryptCost >= 4 && bcryptCost <= 31)) {
    o.logger.warn("using the default bcrypt cost instead of the invalid one given", {
      given: bcryptCost,
      default: DEFAULT_BCRYPT_COST,
    });
    bcryptCost = DEFAULT_BCRYPT_COST;
  }
  const tokens = await tokenProvider(o.authToken, o.authTokenTtl);
  const store = new AuthStore(o.backend, {
    tokens,
    clientCertAuth: o.clientCertAuth,
    logger: o.logger,
  });
  try {
    await store.start();
  } catch (err) {
    store.close();
    throw err;
  }
  const passwords = new PasswordPool();
  return {
    api: new AuthApi(store, {
      bcryptCost,
      passwords,
      logger: o.logger,
      revision: () => o.backend.currentRevision(),
    }),
    guard: new AccessGuard(store, o.leaseKeys),
    close: () => {
      passwords.close();
      store.close();
    },
  };
}
