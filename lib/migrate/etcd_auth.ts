/**
 * etcd's users and roles as kine's auth state, for a copy from etcd: roles
 * with their permissions, users with their role grants, and the switch.
 *
 * etcd hands out no password hashes (UserGet answers roles only), so a user
 * gets a password only where the copy knows it: the source user's own
 * (`--from-user`), and those of `--from-user-password-file` (`name:password`
 * lines). Every other user is copied without a usable password: it cannot
 * sign in with one until `etcdctl user passwd NAME` is run against kine, and
 * the output names those users. A client certificate naming the user (its CN)
 * still authenticates it.
 *
 * @module
 */
import { DEFAULT_BCRYPT_COST, PasswordPool } from "../auth/passwords.ts";
import { encodeState, type PermType, type Role, type User } from "../auth/state.ts";
import type { EtcdConnection } from "./etcd_client.ts";
import type { Side } from "./flags.ts";
import { MigrateError } from "./copy.ts";

/** gRPC status of etcd's "permission denied". */
const PERMISSION_DENIED = 7;
const enc = new TextEncoder();

/** What was read: the encoded state and a line for the output. */
export interface EtcdAuth {
  state: Uint8Array;
  notes: string[];
}

/** Reads `name:password` lines (blank lines and `#` comments skipped). */
export async function readPasswordFile(path: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!path) return out;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new MigrateError(`--from-user-password-file ${path}: ${(err as Error).message}`);
  }
  for (const [i, line] of text.split(/\r?\n/).entries()) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const at = line.indexOf(":");
    if (at <= 0) {
      throw new MigrateError(`--from-user-password-file ${path}:${i + 1}: not name:password`);
    }
    out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

/**
 * etcd's users and roles, or undefined when it has none; a note instead when
 * the source user may not list them (not root, auth on).
 */
export async function readEtcdAuth(
  etcd: EtcdConnection,
  side: Side,
): Promise<EtcdAuth | { notes: string[] } | undefined> {
  const passwords = await readPasswordFile(side.passwordFile);
  if (side.user && !passwords.has(side.user)) passwords.set(side.user, side.password);
  const enabled = await etcd.authEnabled();
  let names: { users: string[]; roles: string[] };
  try {
    const [users, roles] = [await etcd.auth("UserList", {}), await etcd.auth("RoleList", {})];
    names = { users: users.users ?? [], roles: roles.roles ?? [] };
  } catch (err) {
    if ((err as { code?: number }).code !== PERMISSION_DENIED) throw err;
    return {
      notes: [
        `users and roles not copied: ${side.user || "the source user"} may not read them ` +
        "(copy as root to bring them)",
      ],
    };
  }
  if (names.users.length === 0 && names.roles.length === 0) return undefined;
  const roles: Role[] = [];
  for (const name of names.roles) {
    const r = await etcd.auth("RoleGet", { role: name });
    const perms = (r.perm ?? []).map((p: any) => ({
      type: p.permType as PermType,
      key: new Uint8Array(p.key),
      end: new Uint8Array(p.range_end),
    }));
    roles.push({ name, perms });
  }
  const pool = new PasswordPool();
  const users: User[] = [];
  const unset: string[] = [];
  try {
    for (const name of names.users) {
      const r = await etcd.auth("UserGet", { name });
      const password = passwords.get(name);
      if (password === undefined) unset.push(name);
      users.push({
        name,
        password: password === undefined
          ? ""
          : await pool.hash(enc.encode(password), DEFAULT_BCRYPT_COST),
        noPassword: false,
        roles: [...(r.roles ?? [])].sort(),
      });
    }
  } finally {
    pool.close();
  }
  const state = encodeState({
    enabled,
    revision: 1,
    users: new Map(users.map((u) => [u.name, u])),
    roles: new Map(roles.map((r) => [r.name, r])),
  });
  const notes = [
    `auth ${enabled ? "enabled" : "disabled"}: ${users.length} users and ${roles.length} roles ` +
    "copied",
  ];
  if (unset.length > 0) {
    notes.push(
      `users without a password (etcd does not reveal them; run \`etcdctl user passwd NAME\` ` +
        `against kine, or copy again with --from-user-password-file): ${unset.join(", ")}`,
    );
  }
  return { state, notes };
}
