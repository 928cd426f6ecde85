/**
 * Private database servers for the network backends: a PostgreSQL cluster of
 * its own (`initdb`), a `mariadbd` of its own and a `nats-server -js` of its
 * own, each on a free loopback port with its data under the bench's temp
 * directory. The shared servers of the machine are never touched. A server
 * keeps its data directory across restarts, so the bench can restart it with
 * another CPU affinity between modes and keep its large stores.
 *
 * @module
 */
import { capture, type Child, freePort, spawn } from "./process.ts";

/** The network engines the bench can run kine on. */
export type Engine = "postgres" | "mysql" | "nats";

/** A running private database server. */
export interface Database {
  engine: Engine;
  /** Root process: its process tree is the database's CPU and memory. */
  pid: number;
  /** Data directory (its growth is the disk footprint of what was written). */
  dir: string;
  /** Kine's endpoint for database (or bucket) `name`, created by kine when missing. */
  endpoint(name: string): string;
  /** Drops database `name` (best effort; NATS buckets stay until the directory goes). */
  drop(name: string): Promise<void>;
  stop(): Promise<void>;
}

/** Thrown when an engine's server cannot be run here; the message says what is missing. */
export class Unavailable extends Error {}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function which(cmd: string): Promise<string | undefined> {
  return (await capture("sh", ["-c", `command -v ${cmd}`])) || undefined;
}

/** The newest PostgreSQL server directory (Debian keeps them per major version). */
async function postgresBin(): Promise<string | undefined> {
  const versions: number[] = [];
  try {
    for (const e of Deno.readDirSync("/usr/lib/postgresql")) {
      if (Number(e.name) > 0) versions.push(Number(e.name));
    }
  } catch {
    // not installed under Debian's layout: try PATH
  }
  if (versions.length) return `/usr/lib/postgresql/${Math.max(...versions)}/bin`;
  const initdb = await which("initdb");
  return initdb?.replace(/\/initdb$/, "");
}

/**
 * PostgreSQL and MariaDB refuse to run as root: as root, commands run as the
 * engine's system user (created by its Debian package) through `setpriv`,
 * which execs, so the process id stays the server's own.
 */
function asUser(user: string, argv: string[]): string[] {
  if (Deno.uid() !== 0) return argv;
  return ["setpriv", `--reuid=${user}`, `--regid=${user}`, "--init-groups", ...argv];
}

async function runChecked(argv: string[], what: string): Promise<void> {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join(" ");
    throw new Unavailable(`${what} failed: ${text}`);
  }
}

/** Gives `dir` to `user` (as root), and lets it through the bench's private temp directory. */
async function chownTo(user: string, dir: string): Promise<void> {
  if (Deno.uid() !== 0) return;
  await runChecked(["chown", "-R", `${user}:${user}`, dir], "chown");
  await Deno.chmod(dir.replace(/\/[^/]+\/?$/, ""), 0o711);
}

/** Polls `ready` every 100 ms until it resolves true; throws if the server exits or time runs out. */
async function waitReady(
  child: Child,
  what: string,
  logFile: string,
  ready: () => Promise<boolean>,
  timeoutMs = 60_000,
): Promise<void> {
  let exited = false;
  child.exited.then(() => exited = true);
  const giveUp = performance.now() + timeoutMs;
  while (performance.now() < giveUp) {
    if (exited) {
      const log = (await Deno.readTextFile(logFile).catch(() => "")).trim().split("\n");
      throw new Unavailable(`${what} exited while starting: ${log.slice(-2).join(" ")}`);
    }
    if (await ready()) return;
    await sleep(100);
  }
  await child.stop();
  throw new Unavailable(`${what} did not become ready within ${timeoutMs / 1000} s`);
}

async function commandSucceeds(argv: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(argv[0], {
      args: argv.slice(1),
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

async function tcpOpen(port: number): Promise<boolean> {
  try {
    (await Deno.connect({ hostname: "127.0.0.1", port })).close();
    return true;
  } catch {
    return false;
  }
}

/** Database names the engines accept unquoted: lower case, digits, underscores. */
export function databaseName(label: string): string {
  return label.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 60);
}

async function startPostgres(dir: string, cpus: string | undefined, logFile: string) {
  const bin = await postgresBin();
  if (!bin) throw new Unavailable("PostgreSQL server not found (Debian package postgresql)");
  await Deno.mkdir(dir, { recursive: true });
  await chownTo("postgres", dir);
  const data = `${dir}/data`;
  if (!(await Deno.stat(`${data}/PG_VERSION`).catch(() => undefined))) {
    await runChecked(
      asUser("postgres", [
        `${bin}/initdb`,
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
      ]),
      "initdb",
    );
  }
  const port = freePort();
  const argv = asUser("postgres", [
    `${bin}/postgres`,
    "-D",
    data,
    "-p",
    String(port),
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    `unix_socket_directories=${dir}`,
    "-c",
    "max_connections=200",
  ]);
  const child = spawn(argv[0], argv.slice(1), { cpus, logFile, stopSignal: "SIGINT" });
  const psql = (db: string, sql: string) => [
    `${bin}/psql`,
    "-h",
    "127.0.0.1",
    "-p",
    String(port),
    "-U",
    "postgres",
    "-d",
    db,
    "-qAtc",
    sql,
  ];
  await waitReady(
    child,
    "postgres",
    logFile,
    () => commandSucceeds(psql("postgres", "select 1")),
  );
  return {
    child,
    endpoint: (name: string) => `postgres://postgres@127.0.0.1:${port}/${name}?sslmode=disable`,
    drop: async (name: string) => {
      await commandSucceeds(psql("postgres", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function startMariadb(dir: string, cpus: string | undefined, logFile: string) {
  const server = await which("mariadbd") ?? await which("mysqld");
  const install = await which("mariadb-install-db") ?? await which("mysql_install_db");
  const client = await which("mariadb") ?? await which("mysql");
  if (!server || !install || !client) {
    throw new Unavailable("MariaDB server not found (Debian package mariadb-server)");
  }
  await Deno.mkdir(dir, { recursive: true });
  await chownTo("mysql", dir);
  const data = `${dir}/data`;
  const user = Deno.uid() === 0 ? ["--user=mysql"] : [];
  if (!(await Deno.stat(`${data}/mysql`).catch(() => undefined))) {
    await runChecked([
      install,
      "--no-defaults",
      `--datadir=${data}`,
      ...user,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
    ], "mariadb-install-db");
  }
  const port = freePort();
  // Temporary tables in a directory of its own: a shared /tmp is cleaned by others.
  await Deno.mkdir(`${dir}/tmp`, { recursive: true });
  await chownTo("mysql", `${dir}/tmp`);
  const child = spawn(server, [
    "--no-defaults",
    `--datadir=${data}`,
    `--tmpdir=${dir}/tmp`,
    ...user,
    `--port=${port}`,
    "--bind-address=127.0.0.1",
    `--socket=${dir}/mysqld.sock`,
    `--pid-file=${dir}/mysqld.pid`,
    "--max-connections=300",
  ], { cpus, logFile });
  const sql = (stmt: string) => [
    client,
    "--no-defaults",
    "--protocol=tcp",
    "-h127.0.0.1",
    `-P${port}`,
    "-uroot",
    "-e",
    stmt,
  ];
  await waitReady(child, "mariadbd", logFile, () => commandSucceeds(sql("select 1")));
  return {
    child,
    endpoint: (name: string) => `mysql://root@tcp(127.0.0.1:${port})/${name}`,
    drop: async (name: string) => {
      await commandSucceeds(sql(`DROP DATABASE IF EXISTS \`${name}\``));
    },
  };
}

async function startNats(dir: string, cpus: string | undefined, logFile: string) {
  const server = await which("nats-server");
  if (!server) throw new Unavailable("nats-server not found (Debian package nats-server)");
  await Deno.mkdir(dir, { recursive: true });
  const port = freePort();
  const child = spawn(server, ["-js", "-sd", dir, "-a", "127.0.0.1", "-p", String(port)], {
    cpus,
    logFile,
  });
  await waitReady(child, "nats-server", logFile, () => tcpOpen(port));
  return {
    child,
    endpoint: (name: string) => `nats://127.0.0.1:${port}?bucket=${name}`,
    drop: () => Promise.resolve(),
  };
}

const STARTERS = { postgres: startPostgres, mysql: startMariadb, nats: startNats };

/**
 * Starts `engine`'s private server on its data under `dir` (created on first
 * use), pinned to `cpus` if set. Throws {@link Unavailable} when it cannot run.
 */
export async function startDatabase(
  engine: Engine,
  dir: string,
  cpus: string | undefined,
  logFile: string,
): Promise<Database> {
  const s = await STARTERS[engine](dir, cpus, logFile);
  return {
    engine,
    pid: s.child.pid,
    dir,
    endpoint: s.endpoint,
    drop: s.drop,
    stop: () => s.child.stop(30_000),
  };
}
