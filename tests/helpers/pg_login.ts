/**
 * Logs in to PostgreSQL the way kine's driver does (`applyPostgresAuth` + `npm:postgres`) in a
 * process of its own, so each test controls the environment (AWS and Kerberos settings) exactly.
 *
 * As a script: `pg_login.ts <dsn> [identity-provider] [logins] [pause-ms]` prints one JSON line
 * per login, `{user, gss, ssl}` or `{error}` (`{error, startup: true}` when set-up failed).
 */
import postgres from "postgres";
import { takeKerberosParams } from "../../lib/backend/sql/auth/kerberos_dsn.ts";
import { postgresLogin, processEnv } from "../../lib/backend/sql/auth/postgres.ts";

/** One login's outcome as the script prints it. */
export interface LoginResult {
  user?: string;
  gss?: boolean;
  ssl?: boolean;
  error?: string;
  startup?: boolean;
}

export interface PgLoginOptions {
  /** The child's whole environment (nothing is inherited but PATH and HOME). */
  env?: Record<string, string>;
  identityProvider?: string;
  logins?: number;
  pauseMs?: number;
  /** A command prefix, e.g. `["unshare", "--mount", …]`. */
  wrap?: string[];
  /** Called with each result line as it arrives. */
  onLogin?: (r: LoginResult) => void;
}

const ROOT = new URL("../..", import.meta.url).pathname;

/** Runs the script in a child process; resolves with every login's result and the raw output. */
export async function pgLogin(
  dsn: string,
  o: PgLoginOptions = {},
): Promise<{ results: LoginResult[]; output: string }> {
  const argv = [
    Deno.execPath(),
    "run",
    "-A",
    "--config",
    `${ROOT}deno.json`,
    `${ROOT}tests/helpers/pg_login.ts`,
    dsn,
    o.identityProvider ?? "",
    String(o.logins ?? 1),
    String(o.pauseMs ?? 0),
  ];
  const [cmd, ...args] = [...(o.wrap ?? []), ...argv];
  const keep: Record<string, string> = {};
  for (const k of ["PATH", "HOME", "DENO_DIR", "NO_COLOR"]) {
    const v = Deno.env.get(k);
    if (v !== undefined) keep[k] = v;
  }
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    clearEnv: true,
    env: { ...keep, ...o.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const results: LoginResult[] = [];
  let output = "";
  const dec = new TextDecoder();
  const stderr = new Response(child.stderr).text();
  let line = "";
  for await (const chunk of child.stdout) {
    const text = dec.decode(chunk, { stream: true });
    output += text;
    line += text;
    let nl;
    while ((nl = line.indexOf("\n")) >= 0) {
      const r = JSON.parse(line.slice(0, nl)) as LoginResult;
      line = line.slice(nl + 1);
      results.push(r);
      o.onLogin?.(r);
    }
  }
  const status = await child.status;
  output += await stderr;
  if (!status.success) throw new Error(`pg_login failed (${status.code}):\n${output}`);
  return { results, output };
}

if (import.meta.main) {
  const [dsnArg, identityProvider = "", logins = "1", pauseMs = "0"] = Deno.args;
  let dsn, login;
  try {
    const taken = takeKerberosParams(dsnArg, processEnv.env);
    dsn = taken.dsn;
    const url = new URL(dsn);
    const ssl = url.searchParams.get("sslmode") ?? false;
    login = await postgresLogin(
      {
        host: url.hostname,
        port: Number(url.port),
        user: decodeURIComponent(url.username),
        ssl,
        connectTimeout: Number(url.searchParams.get("connect_timeout") ?? 30),
      },
      taken.kerberos,
      { identityProvider, ...processEnv },
    );
  } catch (err) {
    console.log(JSON.stringify({ error: (err as Error).message, startup: true }));
    Deno.exit(0);
  }
  for (let i = 0; i < Number(logins); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, Number(pauseMs)));
    // A pool of one per login: every login is a new connection with its own authentication.
    const sql = postgres(dsn, { ...login, max: 1, onnotice: () => {} } as postgres.Options<never>);
    try {
      const [row] = await sql`
        select current_user as user,
          coalesce((select gss_authenticated from pg_stat_gssapi
                    where pid = pg_backend_pid()), false) as gss,
          coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false) as ssl`;
      console.log(JSON.stringify(row));
    } catch (err) {
      console.log(JSON.stringify({ error: (err as Error).message }));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}
