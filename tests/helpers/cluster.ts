/**
 * Several kine daemons (`deno run main.ts` child processes) on one store,
 * the way K3s HA or Rancher runs them behind a load balancer.
 */
import type { TestBackend } from "./backends.ts";
import { connect, type EtcdClient } from "./client.ts";
import { type Child, spawnKine } from "./daemon.ts";

/** One daemon of a {@link Cluster} and a client connected to it. */
export interface Member {
  child: Child;
  client: EtcdClient;
  /** `127.0.0.1:<port>` */
  target: string;
}

export interface Cluster {
  members: Member[];
  /** The endpoint they share. */
  endpoint: string;
  /** Starts one more daemon on the store. */
  add(): Promise<Member>;
  /** Stops every daemon still running and drops the store. */
  close(): Promise<void>;
}

/** Starts `n` daemons on a fresh store of `backend`, with `extra` flags each. */
export async function startCluster(
  backend: TestBackend,
  n: number,
  extra: string[] = [],
): Promise<Cluster> {
  const dir = await Deno.makeTempDir({ prefix: "kine-ha-" });
  const endpoint = backend.endpoint(dir);
  const args = [
    "--endpoint",
    endpoint,
    "--listen-address",
    "127.0.0.1:0",
    "--metrics-bind-address",
    "0",
    ...extra,
  ];
  const members: Member[] = [];
  const add = async () => {
    const child = await spawnKine(dir, args);
    const member = { child, client: connect(child.target), target: child.target };
    members.push(member);
    return member;
  };
  const close = async () => {
    for (const m of members) m.client.close();
    await Promise.all(members.map((m) => m.child.exited() ? undefined : m.child.stop()));
    await backend.cleanup?.(dir);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    // The first creates the schema; the others start side by side.
    await add();
    await Promise.all(Array.from({ length: n - 1 }, add));
  } catch (err) {
    await close();
    throw err;
  }
  return { members, endpoint, add, close };
}
