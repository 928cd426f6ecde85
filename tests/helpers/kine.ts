/** Starts an in-process kine on a fresh SQLite file and a free loopback port. */
import { type Kine, type KineConfig, startKine } from "../../lib/mod.ts";
import { silentLogger } from "../../lib/log/mod.ts";
import { connect, type EtcdClient } from "./client.ts";

export interface TestKine {
  kine: Kine;
  client: EtcdClient;
  /** `127.0.0.1:<port>`, for etcdctl `--endpoints`. */
  endpoint: string;
  dir: string;
  close(): Promise<void>;
}

export async function startTestKine(config: Partial<KineConfig> = {}): Promise<TestKine> {
  const dir = await Deno.makeTempDir({ prefix: "kine-test-" });
  const kine = await startKine({
    listenAddress: "127.0.0.1:0",
    endpoint: `sqlite://${dir}/state.db`,
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
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/** Runs `fn` against a fresh kine and always closes it. */
export async function withKine(
  fn: (k: TestKine) => Promise<void>,
  config: Partial<KineConfig> = {},
): Promise<void> {
  const k = await startTestKine(config);
  try {
    await fn(k);
  } finally {
    await k.close();
  }
}
