/** Registers a test once per backend of {@link BACKENDS}, each on a fresh store. */
import type { KineConfig } from "../../lib/mod.ts";
import { BACKENDS, type TestBackend } from "./backends.ts";
import { type TestKine, withKine } from "./kine.ts";

/**
 * `Deno.test` per backend, named `[backend] name`. `only` narrows the list
 * for behaviour that needs a store outliving the process.
 */
export function conformance(
  name: string,
  fn: (k: TestKine, backend: TestBackend) => Promise<void>,
  config: Partial<KineConfig> = {},
  only: (b: TestBackend) => boolean = () => true,
): void {
  for (const backend of BACKENDS.filter(only)) {
    Deno.test(`[${backend.name}] ${name}`, () => withKine((k) => fn(k, backend), config, backend));
  }
}

/**
 * A test per backend whose store outlives the process: `fn` gets an endpoint
 * it may start kine on several times; the store is dropped afterwards.
 */
export function restartable(
  name: string,
  fn: (endpoint: string, backend: TestBackend) => Promise<void>,
): void {
  for (const backend of BACKENDS.filter((b) => b.persistent)) {
    Deno.test(`[${backend.name}] ${name}`, async () => {
      const dir = await Deno.makeTempDir({ prefix: "kine-restart-" });
      try {
        await fn(backend.endpoint(dir), backend);
      } finally {
        await backend.cleanup?.(dir);
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}
