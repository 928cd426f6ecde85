/**
 * A loopback TCP relay whose connections to the server leave from another
 * source address (e.g. 127.0.0.2), so a test can be two peers at once: the
 * gRPC client cannot choose its source address, node:net's connect can.
 */
import net from "node:net";

export interface SourceProxy {
  /** `127.0.0.1:<port>`: connect here to reach the server from `source`. */
  endpoint: string;
  close(): Promise<void>;
}

export async function sourceProxy(target: string, source: string): Promise<SourceProxy> {
  const [host, port] = [
    target.slice(0, target.lastIndexOf(":")),
    target.slice(target.lastIndexOf(":") + 1),
  ];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    const up = net.connect({ host, port: Number(port), localAddress: source });
    for (const s of [down, up]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        down.destroy();
        up.destroy();
      });
    }
    down.pipe(up);
    up.pipe(down);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: bound } = server.address() as net.AddressInfo;
  return {
    endpoint: `127.0.0.1:${bound}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
