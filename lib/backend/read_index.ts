/**
 * etcd's ReadIndex for a process that applies a shared store's log: before a
 * linearizable read, learn the store's latest committed revision and wait
 * until this process has applied it. Callers that arrive while a lookup is in
 * flight cannot use it (it may have started before they did), so they share
 * the next one: one lookup serves every read that queued behind it.
 */
export class ReadIndex {
  #inFlight: Promise<number> | undefined;
  #next: Promise<number> | undefined;

  constructor(
    /** The store's latest committed revision, read now. */
    private readonly latest: () => Promise<number>,
    /** Resolves once every revision up to `revision` has been applied here. */
    private readonly applied: (revision: number) => Promise<void>,
  ) {}

  /**
   * Resolves with a revision that covers every write committed to the store
   * before this call, once this process has applied it.
   */
  async barrier(): Promise<number> {
    const revision = await this.#lookup();
    await this.applied(revision);
    return revision;
  }

  #lookup(): Promise<number> {
    if (!this.#inFlight) return this.#start();
    // A lookup already under way may predate this caller: queue one behind it.
    this.#next ??= this.#inFlight.catch(() => {}).then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<number> {
    const lookup = this.latest().finally(() => {
      if (this.#inFlight === lookup) this.#inFlight = undefined;
    });
    this.#inFlight = lookup;
    return lookup;
  }
}
