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
/** The largest batch served: a socket write's high water (1 MiB) plus a frame and small ones. */
const POOLED_UP_TO = (1 << 20) + 64 * 1024;
/** Buffers kept free: two writes in flight cover a socket that keeps up. */
const KEEP = 2;

const free: Uint8Array[] = [];

/**
 * A buffer of at least `size` bytes for one socket write, or undefined when
 * `size` is outside what the pool serves. Hand it back with
 * {@link releaseWriteBuffer} once the write's callback ran. A new buffer is
 * `size` rounded up to a power of two, so a server that only ever joins small
 * answers keeps small buffers (its RSS at rest stays put).
 */
export function takeWriteBuffer(size: number): Uint8Array | undefined {
  if (size < POOLED_FROM || size > POOLED_UP_TO) return undefined;
  const i = free.findIndex((b) => b.length >= size);
  if (i >= 0) return free.splice(i, 1)[0];
  let room = POOLED_FROM;
  while (room < size) room *= 2;
  return new Uint8Array(Math.min(room, POOLED_UP_TO));
}

/** Returns a buffer from {@link takeWriteBuffer} whose write completed: the larger ones are kept. */
export function releaseWriteBuffer(buffer: Uint8Array): void {
  if (free.length < KEEP) {
    free.push(buffer);
    return;
  }
  let smallest = 0;
  for (let i = 1; i < free.length; i++) if (free[i].length < free[smallest].length) smallest = i;
  if (free[smallest].length < buffer.length) free[smallest] = buffer;
}
