/** Loads many keys into a test server, the fast way the backend allows. */
import { b, type EtcdClient } from "./client.ts";
import type { TestBackend } from "./backends.ts";

/**
 * Puts every `[key, value]` and returns the last revision: in txns within
 * etcd's limits (128 ops, 1.5 MiB), or, on a backend without multi-key txns
 * (NATS), as single puts 32 at a time.
 */
export async function putAll(
  client: EtcdClient,
  entries: [string, string][],
  backend?: TestBackend,
): Promise<number> {
  let last = 0;
  const done = (r: { header: { revision: number } }) => {
    last = Math.max(last, Number(r.header.revision));
  };
  if (backend?.multiKeyTxn === false) {
    for (let i = 0; i < entries.length; i += 32) {
      await Promise.all(
        entries.slice(i, i + 32).map(([k, v]) =>
          client.kv.put({ key: b(k), value: b(v) }).then(done)
        ),
      );
    }
    return last;
  }
  let ops: unknown[] = [];
  let bytes = 0;
  const flush = async () => {
    if (ops.length > 0) done(await client.kv.txn({ compare: [], success: ops, failure: [] }));
    ops = [];
    bytes = 0;
  };
  for (const [k, v] of entries) {
    if (ops.length === 128 || bytes + v.length > 1024 * 1024) await flush();
    ops.push({ request_put: { key: b(k), value: b(v) } });
    bytes += v.length;
  }
  await flush();
  return last;
}
