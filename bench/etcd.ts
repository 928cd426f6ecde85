/** A private single-member etcd on loopback ports, with its own data directory. */
import { freePort, spawn } from "./process.ts";
import { LogScan, type Server } from "./server.ts";

/** An etcd data directory and the ports it was created with (reused on restart). */
export interface EtcdStore {
  dir: string;
  clientPort: number;
  peerPort: number;
}

/** A new, empty store under `dir`. */
export function etcdStore(dir: string): EtcdStore {
  return { dir, clientPort: freePort(), peerPort: freePort() };
}

/** Starts etcd on `store` (creating or reopening it), logging to `logFile`. */
export function spawnEtcd(store: EtcdStore, cpus: string | undefined, logFile: string): Server {
  const client = `http://127.0.0.1:${store.clientPort}`;
  const peer = `http://127.0.0.1:${store.peerPort}`;
  const log = new LogScan((line) => {
    try {
      const entry = JSON.parse(line);
      return { level: String(entry.level), message: String(entry.msg) };
    } catch {
      return undefined;
    }
  });
  const child = spawn("etcd", [
    "--name=bench",
    `--data-dir=${store.dir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=bench=${peer}`,
    "--initial-cluster-state=new",
    `--quota-backend-bytes=${8 * 1024 ** 3}`,
    "--logger=zap",
    "--log-outputs=stderr",
  ], {
    cpus,
    logFile,
    onStderrLine: (line) => log.line(line),
  });
  return {
    name: "etcd",
    pid: child.pid,
    target: `127.0.0.1:${store.clientPort}`,
    child,
    log,
    stop: () => child.stop(),
  };
}
