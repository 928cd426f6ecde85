/**
 * Private PostgreSQL and MariaDB servers on their own loopback port and data
 * directory, for tests that stop and restart the database under kine. The
 * machine's shared servers are never touched.
 */

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

async function run(cmd: string, args: string[], opts: Deno.CommandOptions = {}): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped", ...opts })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${text}`);
  return text;
}

/** A free loopback TCP port. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function waitTcp(port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** The newest installed PostgreSQL's binaries (Debian keeps them off PATH). */
function pgBin(tool: string): string {
  const versions = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name)
    .sort((a, b) => Number(b) - Number(a));
  return `/usr/lib/postgresql/${versions[0]}/bin/${tool}`;
}

/** `initdb` into a temp dir owned by `postgres` (it refuses root), trust auth on loopback. */
export async function privatePostgres(): Promise<PrivateDb> {
  const dir = await Deno.makeTempDir({ prefix: "kine-pg-" });
  const port = freePort();
  await run("chown", ["postgres:postgres", dir]);
  const asPostgres = (tool: string, args: string[]) =>
    run("runuser", ["-u", "postgres", "--", pgBin(tool), ...args]);
  await asPostgres("initdb", ["-D", `${dir}/data`, "-U", "postgres", "--auth=trust", "-N"]);
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const start = async () => {
    await asPostgres("pg_ctl", [
      "-D",
      `${dir}/data`,
      "-o",
      opts,
      "-l",
      `${dir}/log`,
      "-w",
      "start",
    ]);
    await waitTcp(port);
  };
  await start();
  return {
    endpoint: `postgres://postgres@127.0.0.1:${port}/kine?sslmode=disable`,
    crash: () =>
      asPostgres("pg_ctl", ["-D", `${dir}/data`, "-m", "immediate", "-w", "stop"]).then(),
    start,
    async destroy() {
      await asPostgres("pg_ctl", ["-D", `${dir}/data`, "-m", "immediate", "-w", "stop"])
        .catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
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
    await waitTcp(port);
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
