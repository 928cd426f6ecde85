/** A private etcd 3.4 (Debian's etcd-server) on loopback ports, the control for side-by-side tests. */
import { connect, type EtcdClient } from "./client.ts";
import { freePort, need } from "./proc.ts";

export interface TestEtcd {
  /** `127.0.0.1:<port>`, for our client and etcdctl. */
  endpoint: string;
  client: EtcdClient;
  close(): Promise<void>;
}

/** Starts etcd with `args` (e.g. `--quota-backend-bytes=…`) in a temporary directory. */
export async function startEtcd(args: string[] = []): Promise<TestEtcd> {
  const bin = need("etcd", "etcd-server");
  const dir = await Deno.makeTempDir({ prefix: "kine-etcd-" });
  const [client, peer] = [freePort(), freePort()];
  const url = (port: number) => `http://127.0.0.1:${port}`;
  const child = new Deno.Command(bin, {
    args: [
      "--name=control",
      `--data-dir=${dir}/data`,
      `--listen-client-urls=${url(client)}`,
      `--advertise-client-urls=${url(client)}`,
      `--listen-peer-urls=${url(peer)}`,
      `--initial-advertise-peer-urls=${url(peer)}`,
      `--initial-cluster=control=${url(peer)}`,
      ...args,
    ],
    stdout: "null",
    stderr: "null",
    stdin: "null",
  }).spawn();
  const endpoint = `127.0.0.1:${client}`;
  const c = connect(endpoint);
  const close = async () => {
    c.close();
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = performance.now() + 15_000;
  for (;;) {
    try {
      await c.maintenance.status({});
      return { endpoint, client: c, close };
    } catch (err) {
      if (performance.now() > deadline) {
        await close();
        throw new Error(`etcd did not start: ${err}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
