/** Starts an in-process kine on a fresh store (SQLite by default) and a free loopback port. */
import { type Kine, type KineConfig, startKine } from "../../lib/mod.ts";
import { silentLogger } from "../../lib/log/mod.ts";
import { BACKENDS, type TestBackend } from "./backends.ts";
import { connect, type EtcdClient } from "./client.ts";

export interface TestKine {
  kine: Kine;
  client: EtcdClient;
  /** `127.0.0.1:<port>`, for etcdctl `--endpoints`. */
  endpoint: string;
  dir: string;
  close(): Promise<void>;
}

/** Starts a server on `backend` (SQLite by default) unless `config.endpoint` names one. */
export async function startTestKine(
  config: Partial<KineConfig> = {},
  backend: TestBackend = BACKENDS[0],
): Promise<TestKine> {
  const dir = await Deno.makeTempDir({ prefix: "kine-test-" });
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    endpoint: backend.endpoint(dir),
    metricsBindAddress: "0",
    ...config,
  }, silentLogger);
  const endpoint = kine.url.replace(/^https?:\/\//, "");
  const client = connect(endpoint);
  return {
    kine,
    client,
    endpoint,
    dir,
    async close() {
      client.close();
      await kine.close();
      await backend.cleanup?.(dir);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `fn` against a fresh kine and always closes it. */
export async function withKine(
  fn: (k: TestKine) => Promise<void>,
  config: Partial<KineConfig> = {},
  backend?: TestBackend,
): Promise<void> {
  const k = await startTestKine(config, backend);
  try {
    await fn(k);
  } finally {
    await k.close();
  }
}
