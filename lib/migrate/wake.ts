/** A wait that ends at a wake-up or after a time, whichever comes first. */
export class Wake {
  #wake?: () => void;

  /** Resolves at the next {@link wake}, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** Ends the wait under way, if any. */
  wake(): void {
    this.#wake?.();
  }
}
