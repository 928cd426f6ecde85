/** Parsing of `--listen-address` and the URL kine advertises for it. */

export interface Listener {
  /** TCP host (IPv6 without brackets); empty for unix sockets. */
  host: string;
  /** TCP port; 0 picks a free one. */
  port: number;
  /** Set for unix sockets. */
  socketPath?: string;
}

/** `unix://path` → socket; `tcp://h:p`, `http://h:p`, `https://h:p` or bare `h:p` → TCP. */
export function parseListenAddress(address: string): Listener {
  if (address === "") address = "unix://kine.sock";
  if (address.startsWith("unix://")) {
    const path = address.slice("unix://".length);
    if (!path) throw new Error(`invalid listen address: ${address}`);
    return { host: "", port: 0, socketPath: path };
  }
  const hostPort = address.replace(/^(tcp|https?):\/\//, "");
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(hostPort);
  if (!m || Number(m[2]) > 65535) throw new Error(`invalid listen address: ${address}`);
  return { host: m[1].replace(/^\[(.*)\]$/, "$1") || "0.0.0.0", port: Number(m[2]) };
}

/** `http(s)://127.0.0.1:<port>` for TCP, `unix(s)://path` for sockets. */
export function advertisedUrl(listener: Listener, port: number, tls: boolean): string {
  const s = tls ? "s" : "";
  if (listener.socketPath) return `unix${s}://${listener.socketPath}`;
  return `http${s}://127.0.0.1:${port}`;
}
