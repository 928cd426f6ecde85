/**
 * Health RPC latency: a grpc health Check on its own connection every 50 ms.
 * The daemon answers Check straight from its event loop, so under load the
 * latency tracks its event-loop delay; the daemon's own measure of that is
 * `kine_event_loop_delay_seconds` (bench/metrics.ts). etcd rows give the
 * baseline of the probe itself.
 */
import { Conn } from "./rpc.ts";
import { Histogram } from "./stats.ts";

/** Samples health Check latency every `intervalMs` until stopped. */
export class HealthProbe {
  readonly latency = new Histogram();
  failures = 0;
  readonly #conn: Conn;
  #running = true;
  readonly #loop: Promise<void>;

  constructor(target: string, readonly intervalMs = 50) {
    this.#conn = new Conn(target);
    this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    // One warm-up call, so the connection setup is not sampled.
    await this.#conn.health(5000).catch(() => {});
    let next = performance.now();
    while (this.#running) {
      const t0 = performance.now();
      try {
        await this.#conn.health(10_000);
        this.latency.add(performance.now() - t0);
      } catch {
        this.failures++;
      }
      next += this.intervalMs;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = performance.now();
    }
  }

  /** Stops sampling and closes the connection. */
  async stop(): Promise<Histogram> {
    this.#running = false;
    await this.#loop;
    this.#conn.close();
    return this.latency;
  }
}
