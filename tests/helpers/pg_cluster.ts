/**
 * A private PostgreSQL cluster for tests that change server settings (pg_hba, Kerberos keytab,
 * TLS): `initdb` into a temporary directory, its own loopback port and socket directory, stopped
 * and removed by {@link PgCluster.stop}. The shared server on 5432 is never touched.
 */
import { freePort, need, run } from "./proc.ts";

export interface PgCluster {
  port: number;
  dir: string;
  /** Runs SQL as the superuser `postgres` over the cluster's unix socket. */
  psql(sql: string, db?: string): Promise<string>;
  /** Stops the server the hard way (no shutdown checkpoint), keeping its files. */
  crash(): Promise<void>;
  /** Starts it again after {@link crash}. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  /** pg_hba.conf lines placed before the final `host all all 127.0.0.1/32 trust`. */
  hba: string[];
  /** Extra postgresql.conf settings. */
  conf?: Record<string, string>;
  /** Environment of the server process (e.g. `KRB5_CONFIG`). */
  env?: Record<string, string>;
  /** Serve TLS with a fresh self-signed certificate. */
  tls?: boolean;
}

const PG_BIN = [
  "/usr/lib/postgresql/17/bin",
  "/usr/lib/postgresql/16/bin",
  "/usr/lib/postgresql/15/bin",
];

/** Starts a cluster; as root the server runs as the `postgres` user (initdb refuses root). */
export async function startPgCluster(o: PgClusterOptions): Promise<PgCluster> {
  const initdb = need("initdb", "postgresql", PG_BIN);
  const pgCtl = need("pg_ctl", "postgresql", PG_BIN);
  const psql = need("psql", "postgresql-client");
  const root = Deno.uid() === 0;
  const asServer = (cmd: string, args: string[]) =>
    root ? run("runuser", ["-u", "postgres", "--", cmd, ...args]) : run(cmd, args);
  const dir = await Deno.makeTempDir({ prefix: "kine-pg-" });
  const data = `${dir}/data`;
  if (root) await run("chown", ["postgres", dir]);
  const port = freePort();
  await asServer(initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-N"]);
  const conf: Record<string, string> = {
    port: String(port),
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    fsync: "off",
    ...o.conf,
  };
  if (o.tls) {
    const cert = ["-keyout", `${data}/server.key`, "-out", `${data}/server.crt`, "-days", "1"];
    const req = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost"];
    await asServer("openssl", req.concat(cert));
    conf.ssl = "on";
  }
  await Deno.writeTextFile(
    `${data}/postgresql.conf`,
    Object.entries(conf).map(([k, v]) => `${k} = ${v}\n`).join(""),
    { append: true },
  );
  await Deno.writeTextFile(
    `${data}/pg_hba.conf`,
    ["local all all trust", ...o.hba, "host all all 127.0.0.1/32 trust", ""].join("\n"),
  );
  const env = Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`);
  const ctl = (args: string[]) => asServer("env", [...env, pgCtl, "-D", data, ...args]);
  const start = () => ctl(["-l", `${dir}/server.log`, "-w", "start"]).then(() => {});
  await start();
  return {
    port,
    dir,
    psql: (sql, db = "postgres") =>
      run(psql, [
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        dir,
        "-p",
        String(port),
        "-U",
        "postgres",
        "-d",
        db,
        "-c",
        sql,
      ]),
    crash: () => ctl(["-m", "immediate", "-w", "stop"]).then(() => {}),
    start,
    stop: async () => {
      await ctl(["-m", "immediate", "-w", "stop"]).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
}
