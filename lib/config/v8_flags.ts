/**
 * The V8 flags kine runs with: `deno task start` passes them, and `deno task compile` builds them
 * into the binary (so the release image and the systemd unit have them). An embedder sets them on
 * its own `deno run`, if at all.
 *
 * Both trade a little garbage-collection work for memory: a young generation of 1 MiB instead of
 * one that grows to 8 MiB and stays there, and an old generation allowed to grow by half (not by
 * V8's up-to-4×) before the next full collection. Measured on a shared 2-core VM (SQLite): at rest
 * after a bulk load of 100,000 keys the daemon held 157–158 MiB instead of 218–248 MiB, and the
 * load took 0–10 % more CPU (ratio of adjacent runs, noise about 10 %).
 *
 * @module
 */

/** `--v8-flags=` value: the flags, comma-separated. */
export const V8_FLAGS = "--max-semi-space-size=1,--heap-growing-percent=50";
