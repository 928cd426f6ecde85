/**
 * The `--identity-provider` registry: which names exist. Kept free of SDK imports so that
 * validating the flag costs nothing; the providers themselves load lazily (see `rds.ts`).
 *
 * @module
 */
import { EndpointError } from "../../errors.ts";

/**
 * A database-authentication setting kine cannot start with; the text says which and why, and
 * never holds a secret (so it is shown as is, like any endpoint error).
 */
export class AuthConfigError extends EndpointError {
  override name = "AuthConfigError";
}

/** Every accepted `--identity-provider` value besides the empty string (static passwords). */
export const IDENTITY_PROVIDERS: readonly string[] = ["aws"];

/** The one-line start-up error for an unknown provider, or `undefined` when `name` is valid. */
export function checkIdentityProvider(name: string): string | undefined {
  if (name === "" || IDENTITY_PROVIDERS.includes(name)) return undefined;
  return `unknown identity provider ${JSON.stringify(name)}: valid values are ${
    IDENTITY_PROVIDERS.map((p) => JSON.stringify(p)).join(", ")
  } (or empty for the DSN's password)`;
}
