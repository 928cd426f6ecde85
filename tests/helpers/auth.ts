/** Auth set-ups shared by the auth tests. */
import * as grpc from "@grpc/grpc-js";
import { b, type EtcdClient } from "./client.ts";

/** Call metadata carrying an auth token. */
export function md(token: string): grpc.Metadata {
  const m = new grpc.Metadata();
  m.set("token", token);
  return m;
}

/** root (password rootpw) and alice (apw) with read-write on the prefix /t/; auth enabled. */
export async function tenant(c: EtcdClient): Promise<{ root: grpc.Metadata }> {
  await c.auth.userAdd({ name: "root", password: "rootpw" });
  await c.auth.userGrantRole({ user: "root", role: "root" });
  await c.auth.roleAdd({ name: "tenant" });
  await c.auth.roleGrantPermission({
    name: "tenant",
    perm: { permType: "READWRITE", key: b("/t/"), range_end: b("/t0") },
  });
  await c.auth.userAdd({ name: "alice", password: "apw" });
  await c.auth.userGrantRole({ user: "alice", role: "tenant" });
  await c.auth.authEnable({});
  return { root: md((await c.auth.authenticate({ name: "root", password: "rootpw" })).token) };
}
