/**
 * Build identification. The release build overwrites this file with the real values.
 *
 * @module
 */

/** Release version printed by `kine --version`; `"dev"` for development builds. */
export const VERSION = "dev";

/** Git commit the binary was built from; `"HEAD"` for development builds. */
export const GIT_COMMIT = "HEAD";
