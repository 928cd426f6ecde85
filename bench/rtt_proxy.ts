/**
 * A TCP relay on loopback that counts round trips: on each connection, a
 * client write that follows an answer from the server (or opens the
 * connection) starts a new one. The relay hands an answer on only once the
 * client has sent nothing for {@link HOLD_MS}, so whatever the client sends
 * before that cannot have waited for it: a write the client's library
 * defers by a tick (postgres.js flushes small tails on setImmediate) is not
 * mistaken for a second round trip.
 */
export interface RttProxy {
  port: number;
  /** Round trips on every connection so far (logins included). */
  readonly trips: number;
  close(): Promise<void>;
}

const HOLD_MS = 5;

export function startRttProxy(target: { host: string; port: number }): RttProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let trips = 0;
  const relay = async (client: Deno.Conn) => {
    const server = await Deno.connect({ hostname: target.host, port: target.port });
    open.add(client);
    open.add(server);
    let answered = true;
    let lastSent = 0;
    const pump = async (from: Deno.Conn, to: Deno.Conn, upstream: boolean) => {
      const buf = new Uint8Array(1 << 16);
      try {
        for (;;) {
          const n = await from.read(buf);
          if (n === null) break;
          if (upstream) {
            if (answered) trips++;
            answered = false;
            lastSent = performance.now();
          } else {
            while (performance.now() - lastSent < HOLD_MS) {
              await new Promise((r) => setTimeout(r, HOLD_MS));
            }
            answered = true;
          }
          let off = 0;
          while (off < n) off += await to.write(buf.subarray(off, n));
        }
      } catch {
        // either side closed
      }
      for (const c of [from, to]) {
        try {
          c.close();
        } catch { /* already closed */ }
        open.delete(c);
      }
    };
    await Promise.all([pump(client, server, true), pump(server, client, false)]);
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) relay(conn);
    } catch { /* closed */ }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get trips() {
      return trips;
    },
    async close() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await accepting;
    },
  };
}
