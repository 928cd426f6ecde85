/**
 * Buffers for the socket writes that join many frames (a large response's
 * DATA), reused once the socket has taken their bytes. Each such write used
 * to allocate a fresh ~1 MiB array: zero-filled, page-faulted in, and
 * counted as external memory until a garbage collection freed it, so a list
 * of 50 MiB paid for 50 of them besides the copy itself.
 *
 * @module
 */

/** Batches smaller than this are joined into a plain new array. */
const POOLED_FROM = 16 * 1024;
/** Size of a pooled buffer: a socket write's high water (1 MiB) plus a frame and small ones. */
const POOLED_SIZE = (1 << 20) + 64 * 1024;
/** Buffers kept free: two writes in flight cover a socket that keeps up. */
const KEEP = 2;

const free: Uint8Array[] = [];

/**
 * A buffer of at least `size` bytes for one socket write, or undefined when
 * `size` is outside what the pool serves. Hand it back with
 * {@link releaseWriteBuffer} once the write's callback ran.
 */
export function takeWriteBuffer(size: number): Uint8Array | undefined {
  if (size < POOLED_FROM || size > POOLED_SIZE) return undefined;
  return free.pop() ?? new Uint8Array(POOLED_SIZE);
}

/** Returns a buffer from {@link takeWriteBuffer} whose write completed. */
export function releaseWriteBuffer(buffer: Uint8Array): void {
  if (free.length < KEEP) free.push(buffer);
}
