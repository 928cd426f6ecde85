/**
 * Permission checks on key ranges, as etcd's range permission cache does:
 * a user's permissions (over all its roles) are merged into read and write
 * interval sets; a single key must lie in one, a range must be covered
 * whole by them. Keys are compared as bytes.
 */
import { type AuthState, hasRootRole, type Permission } from "./state.ts";

/** `[start, end)`; `end` null = no upper bound. */
interface Interval {
  start: Uint8Array;
  end: Uint8Array | null;
}

interface Merged {
  read: Interval[];
  write: Interval[];
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** end ≤ other end, with null as +∞. */
function endAtMost(end: Uint8Array | null, other: Uint8Array | null): boolean {
  if (other === null) return true;
  return end !== null && compareBytes(end, other) <= 0;
}

function interval(p: Permission): Interval {
  if (p.end.length === 0) {
    // A single key: [key, key + "\0").
    const end = new Uint8Array(p.key.length + 1);
    end.set(p.key);
    return { start: p.key, end };
  }
  return { start: p.key, end: p.end.length === 1 && p.end[0] === 0 ? null : p.end };
}

/** Sorts and joins overlapping or touching intervals. */
function merge(ivs: Interval[]): Interval[] {
  const sorted = ivs.filter((iv) => iv.end === null || compareBytes(iv.start, iv.end) < 0)
    .sort((a, b) => compareBytes(a.start, b.start));
  const out: Interval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && (last.end === null || compareBytes(iv.start, last.end) <= 0)) {
      if (!endAtMost(iv.end, last.end)) last.end = iv.end;
    } else {
      out.push({ ...iv });
    }
  }
  return out;
}

/** Merged permissions per user, per state (states are immutable values). */
const cache = new WeakMap<AuthState, Map<string, Merged>>();

function mergedPerms(state: AuthState, userName: string): Merged {
  let perUser = cache.get(state);
  if (!perUser) cache.set(state, perUser = new Map());
  let merged = perUser.get(userName);
  if (!merged) {
    const read: Interval[] = [];
    const write: Interval[] = [];
    for (const roleName of state.users.get(userName)?.roles ?? []) {
      for (const p of state.roles.get(roleName)?.perms ?? []) {
        if (p.type !== "WRITE") read.push(interval(p));
        if (p.type !== "READ") write.push(interval(p));
      }
    }
    merged = { read: merge(read), write: merge(write) };
    perUser.set(userName, merged);
  }
  return merged;
}

function covers(ivs: Interval[], key: Uint8Array, end: Uint8Array | undefined): boolean {
  const open = end !== undefined && end.length === 1 && end[0] === 0;
  for (const iv of ivs) {
    if (compareBytes(iv.start, key) > 0) return false;
    if (!end || end.length === 0) {
      if (iv.end === null || compareBytes(key, iv.end) < 0) return true;
    } else if (endAtMost(open ? null : end, iv.end)) {
      return true;
    }
  }
  return false;
}

/**
 * True if `userName` may read (or write) the key `key` (`end` empty) or the
 * range `[key, end)` (`end` `[0]` = open-ended). Users with the `root` role
 * may do anything; unknown users nothing.
 */
export function rangePermitted(
  state: AuthState,
  userName: string,
  key: Uint8Array,
  end: Uint8Array | undefined,
  write: boolean,
): boolean {
  const user = state.users.get(userName);
  if (!user) return false;
  if (hasRootRole(user)) return true;
  const merged = mergedPerms(state, userName);
  return covers(write ? merged.write : merged.read, key, end);
}
