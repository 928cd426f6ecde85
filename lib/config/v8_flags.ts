/**
 * The V8 flags kine runs with: `deno task start` passes them, and `deno task compile` builds them
 * into the binary (so the release image and the systemd unit have them). An embedder sets them on
 * its own `deno run`, if at all.
 *
 * Both trade a little garbage-collection work for memory: a young generation of at most 2 MiB
 * instead of one that grows to 8 MiB and stays there, and an old generation allowed to grow by
 * half (not by V8's up-to-4×) before the next full collection. Measured on a shared 2-core VM
 * (SQLite): at rest after a bulk load of 100,000 keys the daemon held 157–159 MiB instead of
 * 218–248 MiB, with no more CPU for the load than run-to-run noise (about 10 %). A 1 MiB young
 * generation saved no more and made the start-up slower (0.43–0.47 s of CPU to the first answer,
 * against 0.29–0.39 s).
 *
 * @module
 */

/** `--v8-flags=` value: the flags, comma-separated. */
export const V8_FLAGS = "--max-semi-space-size=2,--heap-growing-percent=50";
