/**
 * Private PostgreSQL and MariaDB servers on their own loopback port and data
 * directory, for tests that stop and restart the database under kine. The
 * machine's shared servers are never touched.
 */
import { startPgCluster } from "./pg_cluster.ts";
import { freePort, run, waitForPort } from "./proc.ts";

/** A database server the test owns. */
export interface PrivateDb {
  /** The kine endpoint for database `kine` on this server. */
  endpoint: string;
  /** Stops the server the hard way (no shutdown checkpoint, clients cut off). */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its files. */
  destroy(): Promise<void>;
}

/** A private PostgreSQL cluster (see {@link startPgCluster}). */
export async function privatePostgres(): Promise<PrivateDb> {
  const pg = await startPgCluster({ hba: [] });
  return {
    endpoint: `postgres://postgres@127.0.0.1:${pg.port}/kine?sslmode=disable`,
    crash: pg.crash,
    start: pg.start,
    destroy: pg.stop,
  };
}

/** `mariadb-install-db` into a temp dir; the server runs without grant tables on loopback. */
export async function privateMariadb(): Promise<PrivateDb> {
  const dir = await Deno.makeTempDir({ prefix: "kine-mariadb-" });
  const port = freePort();
  await run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${dir}/data`,
    "--user=root",
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
  ]);
  let server: Deno.ChildProcess | undefined;
  const start = async () => {
    server = new Deno.Command("/usr/sbin/mariadbd", {
      args: [
        "--no-defaults",
        `--datadir=${dir}/data`,
        `--socket=${dir}/mysqld.sock`,
        `--pid-file=${dir}/mysqld.pid`,
        `--log-error=${dir}/error.log`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--user=root",
        "--skip-grant-tables",
        "--innodb-buffer-pool-size=32M",
        "--innodb-flush-log-at-trx-commit=1",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port, 30_000);
  };
  const crash = async () => {
    server?.kill("SIGKILL");
    await server?.status;
    server = undefined;
  };
  await start();
  return {
    endpoint: `mysql://root@tcp(127.0.0.1:${port})/kine`,
    crash,
    start,
    async destroy() {
      await crash();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
