/** `kine migrate`'s command line. */
import { parseDuration } from "../config/duration.ts";

/** TLS material for one side, as the backend flags name it. */
export interface SideTls {
  caFile: string;
  certFile: string;
  keyFile: string;
  skipVerify: boolean;
}

/** One side of a copy: an endpoint and its TLS and auth settings. */
export interface Side {
  endpoint: string;
  tls: SideTls;
  /** etcd sources: user and password (`--from-user name:password` or `--from-password`). */
  user: string;
  password: string;
  /** etcd sources: `name:password` lines, for the users copied from etcd (it keeps only hashes). */
  passwordFile: string;
}

export interface MigrateOptions {
  from: Side;
  to: Side;
  /** Continue a copy this tool started into the target. */
  resume: boolean;
  /** Tail the source's changes after the copy. */
  follow: boolean;
  /** With `follow`: stop after this long (ms) without a change; 0 = until interrupted. */
  untilIdle: number;
  /** Rows per batch (one target transaction). */
  batchSize: number;
  /** kine's `--table-name` on both sides. */
  tableName: string;
}

export type MigrateArgs =
  | { kind: "options"; options: MigrateOptions }
  | { kind: "help"; text: string }
  | { kind: "error"; message: string };

const DEFAULT_BATCH = 2000;

export const MIGRATE_HELP = `Usage: kine migrate --from SOURCE --to TARGET [flags]

Copies a kine datastore (or a live etcd) into an empty one, every revision kept.

SOURCE and TARGET are kine endpoints (sqlite://, postgres://, mysql://, nats://) as
--endpoint takes them; SOURCE may also be a live etcd: etcd://host:2379 or etcds://host:2379.

Flags:
  --from SOURCE                        where to copy from (required)
  --to TARGET                          where to copy to; must be empty (required)
  --from-cacert, --to-cacert FILE      CA bundle of the side's server (TLS)
  --from-cert, --to-cert FILE          client certificate for the side
  --from-key, --to-key FILE            client key for the side
  --from-insecure-skip-tls-verify, --to-insecure-skip-tls-verify
                                       do not verify the side's server certificate
  --from-user NAME[:PASSWORD]          etcd source: user (auth enabled)
  --from-password PASSWORD             etcd source: password (or in --from-user)
  --from-user-password-file FILE       etcd source: name:password lines for the users copied
                                       (etcd hands out no password hashes; see the README)
  --resume                             continue a copy this command started into TARGET
  --follow                             after the copy, apply the source's changes as they come
  --until-idle DURATION                with --follow: stop after DURATION without changes (e.g. 30s)
  --batch-size N                       rows per target transaction (default ${DEFAULT_BATCH})
  --table-name NAME                    kine's table on SQL endpoints (default kine)
  -h, --help                           this text
`;

const SIDE_FLAGS: Record<string, keyof SideTls> = {
  cacert: "caFile",
  cert: "certFile",
  key: "keyFile",
  "insecure-skip-tls-verify": "skipVerify",
};

function emptySide(): Side {
  return {
    endpoint: "",
    tls: { caFile: "", certFile: "", keyFile: "", skipVerify: false },
    user: "",
    password: "",
    passwordFile: "",
  };
}

/** Parses `kine migrate`'s flags (`--flag value` or `--flag=value`). */
export function parseMigrateArgs(argv: string[]): MigrateArgs {
  const o: MigrateOptions = {
    from: emptySide(),
    to: emptySide(),
    resume: false,
    follow: false,
    untilIdle: 0,
    batchSize: DEFAULT_BATCH,
    tableName: "kine",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "-h" || arg === "--help") return { kind: "help", text: MIGRATE_HELP };
    const m = /^--?([a-z-]+)(?:=(.*))?$/s.exec(arg);
    if (!m) return { kind: "error", message: `unexpected argument ${JSON.stringify(arg)}` };
    const [, name, inline] = m;
    const value = (): string => {
      if (inline !== undefined) return inline;
      if (i + 1 >= argv.length) throw new FlagError(`flag needs an argument: --${name}`);
      return argv[++i];
    };
    try {
      const side = /^(from|to)-(.+)$/.exec(name);
      if (name === "from" || name === "to") o[name].endpoint = value();
      else if (name === "resume" || name === "follow") o[name] = inline !== "false";
      else if (name === "until-idle") o.untilIdle = duration(name, value());
      else if (name === "batch-size") o.batchSize = positive(name, value());
      else if (name === "table-name") o.tableName = value();
      else if (side && side[2] in SIDE_FLAGS) {
        const key = SIDE_FLAGS[side[2]];
        const tls = o[side[1] as "from" | "to"].tls;
        if (key === "skipVerify") tls.skipVerify = inline !== "false";
        else tls[key] = value();
      } else if (name === "from-user") {
        const [user, ...password] = value().split(":");
        o.from.user = user;
        if (password.length > 0) o.from.password = password.join(":");
      } else if (name === "from-password") o.from.password = value();
      else if (name === "from-user-password-file") o.from.passwordFile = value();
      else return { kind: "error", message: `unknown flag: --${name}` };
    } catch (err) {
      if (err instanceof FlagError) return { kind: "error", message: err.message };
      throw err;
    }
  }
  if (!o.from.endpoint) return { kind: "error", message: "--from is required" };
  if (!o.to.endpoint) return { kind: "error", message: "--to is required" };
  if (o.untilIdle > 0 && !o.follow) {
    return { kind: "error", message: "--until-idle needs --follow" };
  }
  return { kind: "options", options: o };
}

class FlagError extends Error {}

function duration(name: string, text: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new FlagError(`invalid value ${JSON.stringify(text)} for --${name}: a duration (30s)`);
  }
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) {
    throw new FlagError(`invalid value ${JSON.stringify(text)} for --${name}: a positive integer`);
  }
  return n;
}
