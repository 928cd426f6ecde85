/**
 * The load generator, coordinator side: K worker processes (bench/worker.ts)
 * that run jobs on request, and their CPU time from /proc.
 */
import { type Child, spawn } from "./process.ts";
import { cpuSeconds } from "./procfs.ts";

/** A job running in a worker. */
export interface Job<T> {
  /** Resolves with the job's `ready` data (jobs that set up first, such as watchers). */
  ready: Promise<unknown>;
  /** Resolves with the job's result. */
  done: Promise<T>;
  /** Sends the job its stop message. */
  stop(data?: unknown): void;
}

interface Pending {
  ready: (v: unknown) => void;
  done: (v: any) => void;
  fail: (e: Error) => void;
}

class Worker {
  readonly #pending = new Map<number, Pending>();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly hello: Promise<void>;

  constructor(readonly child: Child) {
    this.#writer = child.process.stdin.getWriter();
    let helloed!: () => void;
    this.hello = new Promise((r) => helloed = r);
    this.#read(helloed);
    child.exited.then((code) => {
      for (const p of this.#pending.values()) p.fail(new Error(`worker exited (${code})`));
      this.#pending.clear();
    });
  }

  async #read(helloed: () => void): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of this.child.process.stdout) {
      partial += decoder.decode(chunk, { stream: true });
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.hello) helloed();
        const p = this.#pending.get(msg.id);
        if (!p) continue;
        if ("ready" in msg) p.ready(msg.ready);
        if ("done" in msg) p.done(msg.done);
        if ("error" in msg) p.fail(new Error(msg.error));
        if ("done" in msg || "error" in msg) this.#pending.delete(msg.id);
      }
    }
  }

  send(msg: unknown): void {
    this.#writer.write(new TextEncoder().encode(JSON.stringify(msg) + "\n")).catch(() => {});
  }

  run<T>(id: number, job: string, params: unknown): Job<T> {
    const pending = {} as Pending;
    let readyFail!: (e: Error) => void;
    const ready = new Promise((resolve, reject) => {
      pending.ready = resolve;
      readyFail = reject;
    });
    const done = new Promise<T>((resolve, reject) => {
      pending.done = resolve;
      pending.fail = (e) => {
        readyFail(e);
        reject(e);
      };
    });
    ready.catch(() => {});
    done.catch(() => {});
    this.#pending.set(id, pending);
    this.send({ id, job, params });
    return { ready, done, stop: (data) => this.send({ id, stop: data ?? true }) };
  }

  close(): Promise<void> {
    this.#writer.close().catch(() => {});
    return this.child.stop(2000);
  }
}

/** K load generator worker processes, optionally pinned. */
export class LoadGen {
  #nextId = 1;

  private constructor(readonly workers: Worker[]) {}

  /** Spawns `k` workers (on `cpus` if set) and waits until each is ready. */
  static async start(k: number, cpus: string | undefined, logFile: string): Promise<LoadGen> {
    const script = new URL("./worker.ts", import.meta.url).pathname;
    const config = new URL("../deno.json", import.meta.url).pathname;
    const workers = Array.from({ length: k }, () =>
      new Worker(
        spawn(Deno.execPath(), ["run", "-A", "--config", config, script], {
          cpus,
          pipes: true,
          logFile,
        }),
      ));
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error("load generator workers did not start")), 60_000)
    );
    await Promise.race([Promise.all(workers.map((w) => w.hello)), timeout]);
    return new LoadGen(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** Starts `job` on worker `i`. */
  run<T = any>(i: number, job: string, params: unknown): Job<T> {
    return this.workers[i % this.workers.length].run<T>(this.#nextId++, job, params);
  }

  /** Runs `job` on every worker with `params(i)` and returns the results in order. */
  all<T = any>(job: string, params: (i: number) => unknown): Promise<T[]> {
    return Promise.all(this.workers.map((_, i) => this.run<T>(i, job, params(i)).done));
  }

  /** CPU seconds used so far by all workers together. */
  cpuSeconds(): number {
    return this.workers.reduce((sum, w) => sum + cpuSeconds(w.child.pid), 0);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
