/** Range permission checks (lib/auth/perms.ts) on hand-made states: merging, edges, open ends. */
import assert from "node:assert/strict";
import { rangePermitted } from "../lib/auth/perms.ts";
import { type AuthState, EMPTY_STATE, type Permission, type PermType } from "../lib/auth/state.ts";

const b = (text: string) => new TextEncoder().encode(text);
const perm = (type: PermType, key: string, end = ""): Permission => ({
  type,
  key: b(key),
  end: end === "\0" ? new Uint8Array([0]) : b(end),
});

function state(...roles: Permission[][]): AuthState {
  const names = roles.map((_, i) => `r${i}`);
  return {
    ...EMPTY_STATE,
    enabled: true,
    users: new Map([
      ["u", { name: "u", password: "", noPassword: true, roles: names }],
      ["root", { name: "root", password: "", noPassword: true, roles: ["root"] }],
    ]),
    roles: new Map(roles.map((perms, i) => [names[i], { name: names[i], perms }])),
  };
}

const read = (s: AuthState, key: string, end?: string, user = "u") =>
  rangePermitted(
    s,
    user,
    b(key),
    end === undefined ? undefined : end === "\0" ? new Uint8Array([0]) : b(end),
    false,
  );
const write = (s: AuthState, key: string, end?: string) =>
  rangePermitted(s, "u", b(key), end === undefined ? undefined : b(end), true);

Deno.test("perms: ranges of several roles are merged; a range must be covered whole", () => {
  const s = state([perm("READ", "/a", "/m")], [perm("READWRITE", "/m", "/z")]);
  assert.ok(read(s, "/a", "/z"), "two touching ranges cover their union");
  assert.ok(!read(s, "/a", "/z\0"), "one byte past the end");
  assert.ok(!read(s, "/", "/b"), "starts before");
  assert.ok(read(s, "/l"));
  assert.ok(!read(s, "/z"), "the end is exclusive");
  assert.ok(!write(s, "/l"), "read-only role");
  assert.ok(write(s, "/m", "/z"));
  assert.ok(!write(s, "/a", "/z"));
});

Deno.test("perms: single keys, open ends, root and unknown users", () => {
  const s = state([perm("READ", "/k"), perm("WRITE", "/w"), perm("READ", "/x/", "\0")]);
  assert.ok(read(s, "/k"));
  assert.ok(!read(s, "/k0"));
  assert.ok(read(s, "/k", "/k\0"), "the key alone as a range");
  assert.ok(!read(s, "/k", "/k\0\0"));
  assert.ok(!read(s, "/w"), "write-only");
  assert.ok(write(s, "/w"));
  assert.ok(read(s, "/x/y", "\0"), "open-ended permission covers an open-ended range");
  assert.ok(read(s, "\u{10ffff}"));
  assert.ok(!read(s, "/x", "\0"));
  assert.ok(read(s, "\0", "\0", "root"), "root reads everything");
  assert.ok(!read(s, "/k", undefined, "ghost"), "an unknown user nothing");
});
