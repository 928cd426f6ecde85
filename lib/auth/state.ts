/**
 * The auth state (users, roles, the switch and the auth revision) as one
 * immutable value, and etcd's rules for changing it (server/auth/store.go).
 * Every operation returns the next state, or `undefined` when it changes
 * nothing (etcd answers those without a new auth revision), or throws
 * etcd's error.
 */
import * as E from "./errors.ts";

export type PermType = "READ" | "WRITE" | "READWRITE";

/** A key permission: `end` empty = the key alone, `[0]` = every key from `key` on. */
export interface Permission {
  type: PermType;
  key: Uint8Array;
  end: Uint8Array;
}

export interface User {
  name: string;
  /** bcrypt hash; "" for a user created with `no_password`. */
  password: string;
  noPassword: boolean;
  /** Sorted. */
  roles: string[];
}

export interface Role {
  name: string;
  /** Sorted by key. */
  perms: Permission[];
}

export interface AuthState {
  enabled: boolean;
  /** etcd's auth revision: 1 on a fresh store, +1 on every change but `auth enable`. */
  revision: number;
  users: ReadonlyMap<string, User>;
  roles: ReadonlyMap<string, Role>;
}

export const ROOT = "root";

export const EMPTY_STATE: AuthState = {
  enabled: false,
  revision: 1,
  users: new Map(),
  roles: new Map(),
};

export function hasRootRole(u: User): boolean {
  return u.roles.includes(ROOT);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => compareBytes(a, b) === 0;

/** The next state with `users`/`roles` replaced and the auth revision advanced. */
function next(
  s: AuthState,
  change: { users?: Map<string, User>; roles?: Map<string, Role>; enabled?: boolean },
): AuthState {
  return {
    enabled: change.enabled ?? s.enabled,
    revision: s.revision + 1,
    users: change.users ?? s.users,
    roles: change.roles ?? s.roles,
  };
}

function withUser(s: AuthState, u: User): Map<string, User> {
  return new Map(s.users).set(u.name, u);
}

function user(s: AuthState, name: string): User {
  const u = s.users.get(name);
  if (!u) throw E.userNotFound();
  return u;
}

/** Needs a `root` user holding the `root` role; enabling twice changes nothing. */
export function authEnable(s: AuthState): AuthState | undefined {
  if (s.enabled) return undefined;
  const root = s.users.get(ROOT);
  if (!root) throw E.rootUserNotExist();
  if (!hasRootRole(root)) throw E.rootRoleNotExist();
  // etcd does not advance the auth revision here.
  return { ...s, enabled: true };
}

export function authDisable(s: AuthState): AuthState | undefined {
  return s.enabled ? next(s, { enabled: false }) : undefined;
}

/** `password` is the bcrypt hash, or "" with `noPassword`. */
export function userAdd(
  s: AuthState,
  name: string,
  password: string,
  noPassword: boolean,
): AuthState {
  if (name === "") throw E.userEmpty();
  if (s.users.has(name)) throw E.userAlreadyExist();
  return next(s, { users: withUser(s, { name, password, noPassword, roles: [] }) });
}

export function userDelete(s: AuthState, name: string): AuthState {
  if (s.enabled && name === ROOT) throw E.invalidAuthMgmt();
  user(s, name);
  const users = new Map(s.users);
  users.delete(name);
  return next(s, { users });
}

/** A no-password user keeps no password, as in etcd. */
export function userChangePassword(s: AuthState, name: string, password: string): AuthState {
  const u = user(s, name);
  return next(s, { users: withUser(s, { ...u, password: u.noPassword ? "" : password }) });
}

/** The `root` role may be granted before it exists as a role (etcdctl's `auth enable` does). */
export function userGrantRole(s: AuthState, name: string, role: string): AuthState | undefined {
  const u = user(s, name);
  if (role !== ROOT && !s.roles.has(role)) throw E.roleNotFound();
  if (u.roles.includes(role)) return undefined;
  return next(s, { users: withUser(s, { ...u, roles: [...u.roles, role].sort() }) });
}

export function userRevokeRole(s: AuthState, name: string, role: string): AuthState {
  if (s.enabled && name === ROOT && role === ROOT) throw E.invalidAuthMgmt();
  const u = user(s, name);
  if (!u.roles.includes(role)) throw E.roleNotGranted();
  return next(s, { users: withUser(s, { ...u, roles: u.roles.filter((r) => r !== role) }) });
}

export function roleAdd(s: AuthState, name: string): AuthState {
  if (name === "") throw E.roleEmpty();
  if (s.roles.has(name)) throw E.roleAlreadyExist();
  return next(s, { roles: new Map(s.roles).set(name, { name, perms: [] }) });
}

/** Deleting a role also takes it from every user that holds it. */
export function roleDelete(s: AuthState, name: string): AuthState {
  if (s.enabled && name === ROOT) throw E.invalidAuthMgmt();
  if (!s.roles.has(name)) throw E.roleNotFound();
  const roles = new Map(s.roles);
  roles.delete(name);
  const users = new Map(s.users);
  for (const u of s.users.values()) {
    if (u.roles.includes(name)) {
      users.set(u.name, {
        ...u,
        roles: u.roles.filter((r) => r !== name),
      });
    }
  }
  return next(s, { users, roles });
}

/** A permission on the same key and range end replaces the old one's type. */
export function roleGrantPermission(
  s: AuthState,
  name: string,
  perm: Permission | undefined,
): AuthState {
  if (!perm) throw E.permissionNotGiven();
  const role = s.roles.get(name);
  if (!role) throw E.roleNotFound();
  const kept = role.perms.filter((p) =>
    !(sameBytes(p.key, perm.key) && sameBytes(p.end, perm.end))
  );
  const perms = [...kept, perm].sort((a, b) => compareBytes(a.key, b.key));
  return next(s, { roles: new Map(s.roles).set(name, { name, perms }) });
}

export function roleRevokePermission(
  s: AuthState,
  name: string,
  key: Uint8Array,
  end: Uint8Array,
): AuthState {
  const role = s.roles.get(name);
  if (!role) throw E.roleNotFound();
  const perms = role.perms.filter((p) => !(sameBytes(p.key, key) && sameBytes(p.end, end)));
  if (perms.length === role.perms.length) throw E.permissionNotGranted();
  return next(s, { roles: new Map(s.roles).set(name, { name, perms }) });
}

/** `root`'s permission as etcd reports it: read-write on every key. */
export const ROOT_PERMISSION: Permission = {
  type: "READWRITE",
  key: new Uint8Array(0),
  end: new Uint8Array([0]),
};

// ---------------------------------------------------------------------------------------------
// Stored form: JSON, keys and range ends in base64 (they are bytes).

interface StoredState {
  v: 1;
  enabled: boolean;
  revision: number;
  users: User[];
  roles: { name: string; perms: { type: PermType; key: string; end: string }[] }[];
}

function b64(b: Uint8Array): string {
  let text = "";
  for (const byte of b) text += String.fromCharCode(byte);
  return btoa(text);
}
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

export function encodeState(s: AuthState): Uint8Array {
  const stored: StoredState = {
    v: 1,
    enabled: s.enabled,
    revision: s.revision,
    users: [...s.users.values()],
    roles: [...s.roles.values()].map((r) => ({
      name: r.name,
      perms: r.perms.map((p) => ({ type: p.type, key: b64(p.key), end: b64(p.end) })),
    })),
  };
  return new TextEncoder().encode(JSON.stringify(stored));
}

export function decodeState(value: Uint8Array): AuthState {
  const stored = JSON.parse(new TextDecoder().decode(value)) as StoredState;
  if (stored.v !== 1) throw new Error(`unknown auth state version ${stored.v}`);
  return {
    enabled: stored.enabled,
    revision: stored.revision,
    users: new Map(stored.users.map((u) => [u.name, u])),
    roles: new Map(stored.roles.map((r) => [r.name, {
      name: r.name,
      perms: r.perms.map((p) => ({ type: p.type, key: unb64(p.key), end: unb64(p.end) })),
    }])),
  };
}
