/**
 * Password hashes: bcrypt over the password's bytes, as etcd stores them, at
 * etcd's default cost. The work runs on a small pool of worker threads
 * (bcrypt_worker.ts) so a flood of logins never stalls the event loop that
 * serves everyone else; jobs past a bounded queue are refused at once.
 */
import * as E from "./errors.ts";
import type { BcryptDone, BcryptJob } from "./bcrypt_worker.ts";

/** etcd's `--bcrypt-cost` default (Go's bcrypt.DefaultCost). */
export const DEFAULT_BCRYPT_COST = 10;

/** bcrypt reads 72 bytes of a password at most (Go's bcrypt as etcd 3.4 vendors it ignores the rest). */
const BCRYPT_MAX_BYTES = 72;
/** Jobs that may wait for a thread; more are refused with etcd's "too many requests". */
export const MAX_QUEUED = 64;

/**
 * The key bcrypt is given: at most 72 bytes, and the empty password as one
 * NUL byte — bcrypt appends a NUL to every key, so both expand to the same
 * all-zero key (what Go computes for ""), which the library would refuse.
 */
function bcryptKey(password: Uint8Array): Uint8Array {
  if (password.length === 0) return new Uint8Array(1);
  return password.length > BCRYPT_MAX_BYTES ? password.slice(0, BCRYPT_MAX_BYTES) : password;
}

type Job = BcryptJob extends infer J ? J extends { id: number } ? Omit<J, "id"> : never : never;

interface Pending {
  job: Job;
  resolve(done: BcryptDone): void;
}

/** Worker threads running bcrypt, each one job at a time, behind one bounded queue. */
export class PasswordPool {
  readonly #idle: Worker[] = [];
  readonly #busy = new Map<number, { worker: Worker; pending: Pending }>();
  readonly #queue: Pending[] = [];
  #workers = 0;
  #nextId = 0;
  #closed = false;

  /** `threads`: by default one fewer than the cores (the event loop keeps one), at least 1, at most 4. */
  constructor(
    private readonly threads = Math.max(1, Math.min(4, navigator.hardwareConcurrency - 1)),
  ) {}

  /** A new hash of `password` at `cost` (4–31). */
  async hash(password: Uint8Array, cost: number): Promise<string> {
    const done = await this.#run({ op: "hash", password: bcryptKey(password), cost });
    return done.hash!;
  }

  /** True when `password` matches `hash`; false for "" (a user without a password). */
  async check(password: Uint8Array, hash: string): Promise<boolean> {
    if (hash === "") return false;
    const done = await this.#run({ op: "check", password: bcryptKey(password), hash });
    return done.ok === true;
  }

  /** Stops every thread; jobs not yet done are answered "too many requests". */
  close(): void {
    this.#closed = true;
    for (const w of this.#idle) w.terminate();
    for (const { worker, pending } of this.#busy.values()) {
      worker.terminate();
      pending.resolve({ id: -1, error: "closed" });
    }
    for (const p of this.#queue.splice(0)) p.resolve({ id: -1, error: "closed" });
    this.#idle.length = 0;
    this.#busy.clear();
  }

  async #run(job: Job): Promise<BcryptDone> {
    if (this.#closed || this.#queue.length >= MAX_QUEUED) throw E.tooManyRequests();
    const done = await new Promise<BcryptDone>((resolve) => {
      this.#queue.push({ job, resolve });
      this.#dispatch();
    });
    if (done.error === "closed") throw E.tooManyRequests();
    if (done.error !== undefined) throw new Error(`bcrypt: ${done.error}`);
    return done;
  }

  #dispatch(): void {
    while (this.#queue.length > 0) {
      const worker = this.#idle.pop() ?? this.#spawn();
      if (!worker) return;
      const pending = this.#queue.shift()!;
      const id = ++this.#nextId;
      this.#busy.set(id, { worker, pending });
      worker.postMessage({ ...pending.job, id } as BcryptJob);
    }
  }

  /** A new thread while the pool is below its size, else undefined. */
  #spawn(): Worker | undefined {
    if (this.#workers >= this.threads) return undefined;
    this.#workers++;
    const worker = new Worker(new URL("./bcrypt_worker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (e: MessageEvent<BcryptDone>) => {
      const entry = this.#busy.get(e.data.id);
      if (!entry) return;
      this.#busy.delete(e.data.id);
      this.#idle.push(worker);
      entry.pending.resolve(e.data);
      this.#dispatch();
    };
    // A thread that died (it could not load) fails its job and leaves the pool.
    worker.onerror = (e) => {
      e.preventDefault();
      worker.terminate();
      this.#workers--;
      for (const [id, entry] of this.#busy) {
        if (entry.worker !== worker) continue;
        this.#busy.delete(id);
        entry.pending.resolve({ id, error: e.message });
      }
      this.#dispatch();
    };
    return worker;
  }
}
