/**
 * The load generator, coordinator side: one Go process on etcd's clientv3
 * (bench/loadgen, built by bench/gobuild.ts) that runs jobs on request, and
 * its CPU time from /proc.
 */
import { ensureLoadgen } from "./gobuild.ts";
import { type Child, spawn } from "./process.ts";
import { cpuSeconds } from "./procfs.ts";

/** A job running in the load generator. */
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

/** The Go load generator process, optionally pinned. */
export class LoadGen {
  readonly #pending = new Map<number, Pending>();
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #nextId = 1;

  private constructor(readonly child: Child, hello: () => void) {
    this.#writer = child.process.stdin.getWriter();
    this.#read(hello);
    child.exited.then((code) => {
      for (const p of this.#pending.values()) p.fail(new Error(`load generator exited (${code})`));
      this.#pending.clear();
    });
  }

  /** Builds the generator if needed, starts it (on `cpus` if set) and waits until it is ready. */
  static async start(cpus: string | undefined, logFile: string): Promise<LoadGen> {
    const bin = await ensureLoadgen();
    let hello!: () => void;
    const ready = new Promise<void>((r) => hello = r);
    const gen = new LoadGen(spawn(bin, [], { cpus, pipes: true, logFile }), hello);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("load generator did not start")), 30_000);
    });
    try {
      await Promise.race([
        ready,
        timeout,
        gen.child.exited.then((c) => {
          throw new Error(`load generator exited (${c}) while starting`);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return gen;
  }

  async #read(hello: () => void): Promise<void> {
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
        if (msg.hello) hello();
        const p = this.#pending.get(msg.id);
        if (!p) continue;
        if ("ready" in msg) p.ready(msg.ready);
        if ("done" in msg) p.done(msg.done);
        if ("error" in msg) p.fail(new Error(msg.error));
        if ("done" in msg || "error" in msg) this.#pending.delete(msg.id);
      }
    }
  }

  #send(msg: unknown): void {
    this.#writer.write(new TextEncoder().encode(JSON.stringify(msg) + "\n")).catch(() => {});
  }

  /** Starts `job` with `params` (see bench/loadgen/*.go for each job's parameters). */
  run<T = any>(job: string, params: unknown): Job<T> {
    const id = this.#nextId++;
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
    this.#send({ id, job, params });
    return { ready, done, stop: (data) => this.#send({ id, stop: data ?? true }) };
  }

  /** Runs `job` to its end and returns its result. */
  call<T = any>(job: string, params: unknown): Promise<T> {
    return this.run<T>(job, params).done;
  }

  /** CPU seconds the generator has used so far (all its threads). */
  cpuSeconds(): number {
    return cpuSeconds(this.child.pid);
  }

  /** Closes its stdin (it exits by itself) and waits, killing it after 2 s. */
  close(): Promise<void> {
    this.#writer.close().catch(() => {});
    return this.child.stop(2000);
  }
}
