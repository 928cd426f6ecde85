/**
 * Roles (lease reaper, compactor) among processes sharing one SQLite file: a
 * claim that meets another writer's lock is deferred quietly, not a warning,
 * and succeeds on a later try once the lock is gone.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openBackend } from "../lib/backend/endpoint.ts";
import { backendOptions, defaultConfig } from "../lib/mod.ts";
import { createLogger } from "../lib/log/mod.ts";
import { Role } from "../lib/role/mod.ts";

Deno.test("sqlite: a role claim that meets another process's write lock is deferred at debug level", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kine-role-" });
  const lines: string[] = [];
  const sink = {
    writeSync: (b: Uint8Array) => (lines.push(new TextDecoder().decode(b)), b.length),
  };
  const logger = createLogger({ debug: true, stdout: sink, stderr: sink });
  const path = `${dir}/state.db`;
  const { backend } = await openBackend(
    backendOptions({ ...defaultConfig(), endpoint: `sqlite://${path}` }, logger),
  );
  await backend.start();
  const locker = new DatabaseSync(path);
  try {
    const role = new Role(backend, "test_role", logger);
    locker.exec("BEGIN EXCLUSIVE");
    assert.equal(await role.held(), false);
    locker.exec("ROLLBACK");
    const claims = lines.filter((l) => l.includes("role claim failed"));
    assert.equal(claims.length, 1, lines.join(""));
    assert.match(claims[0], /DEBUG/);
    assert.doesNotMatch(lines.join(""), /WARN|ERROR/);
    // Claims are tried at most once a second; the next one finds the store free.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal(await role.held(), true);
    await role.release();
  } finally {
    locker.close();
    await backend.close();
    await Deno.remove(dir, { recursive: true });
  }
});
