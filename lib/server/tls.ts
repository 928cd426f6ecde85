/**
 * Listener TLS material, read once at start-up before anything listens: a file that cannot be read
 * or holds no PEM block is a {@link ConfigError} naming its flag and path.
 *
 * @module
 */
import { ConfigError } from "../config/errors.ts";
import type { TlsOptions } from "./h2/mod.ts";

/** The listener TLS flags of a configuration. */
export interface ServerTlsFlags {
  serverCertFile: string;
  serverKeyFile: string;
  trustedCaFile: string;
}

/** Why a read failed, in words (Deno's messages end with the syscall and path, repeated). */
function reason(err: unknown): string {
  if (err instanceof Deno.errors.NotFound) return "no such file";
  if (err instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (err instanceof Deno.errors.IsADirectory) return "is a directory";
  return String((err as Error)?.message ?? err).replace(/:.*$/s, "");
}

const PEM_BLOCK = {
  certificate: /-----BEGIN CERTIFICATE-----/,
  "private key": /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
};

function readPem(flag: string, path: string, what: keyof typeof PEM_BLOCK): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(path);
  } catch (err) {
    throw new ConfigError(`cannot read --${flag} ${JSON.stringify(path)}: ${reason(err)}`);
  }
  if (!PEM_BLOCK[what].test(new TextDecoder().decode(bytes))) {
    throw new ConfigError(`--${flag} ${JSON.stringify(path)} holds no PEM ${what}`);
  }
  return bytes;
}

/**
 * Reads the listener's certificate, key and client CA; `undefined` when TLS is off. The flags must
 * already be consistent (`validateConfig`).
 */
export function loadServerTls(flags: ServerTlsFlags): TlsOptions | undefined {
  if (flags.serverCertFile === "" || flags.serverKeyFile === "") return undefined;
  return {
    cert: readPem("server-cert-file", flags.serverCertFile, "certificate"),
    key: readPem("server-key-file", flags.serverKeyFile, "private key"),
    ca: flags.trustedCaFile === ""
      ? undefined
      : readPem("trusted-ca-file", flags.trustedCaFile, "certificate"),
  };
}
