/**
 * The one error kind the operator fixes in the configuration: a flag, an environment variable, a
 * file a flag names, or the datastore endpoint. The command prints its message as one line and
 * exits 2; the message names the flag or path and the reason, and never holds a credential.
 */
export class ConfigError extends Error {}
