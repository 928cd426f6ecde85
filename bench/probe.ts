/**
 * Health RPC latency: a grpc health Check on its own connection every 50 ms,
 * sent by the load generator. The daemon answers Check straight from its
 * event loop, so under load the latency tracks its event-loop delay; the
 * daemon's own measure of that is `kine_event_loop_delay_seconds`
 * (bench/metrics.ts). etcd rows give the baseline of the probe itself.
 */
import type { Job, LoadGen } from "./loadgen.ts";
import type { HistogramData } from "./stats.ts";

/** Samples health Check latency every `intervalMs` until stopped. */
export class HealthProbe {
  readonly #job: Job<{ latency: HistogramData; failures: number }>;

  private constructor(loadgen: LoadGen, target: string, intervalMs: number) {
    this.#job = loadgen.run("health", { target, intervalMs });
  }

  /** Starts the probe and waits until its connection is up. */
  static async start(loadgen: LoadGen, target: string, intervalMs = 50): Promise<HealthProbe> {
    const probe = new HealthProbe(loadgen, target, intervalMs);
    await probe.#job.ready;
    return probe;
  }

  /** Stops sampling; returns the latencies and the number of failed checks. */
  stop(): Promise<{ latency: HistogramData; failures: number }> {
    this.#job.stop();
    return this.#job.done;
  }
}
