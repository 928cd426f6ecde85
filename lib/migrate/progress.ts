/**
 * Progress of a copy: a bar redrawn in place on a terminal (rows/s, ETA),
 * a plain line every few seconds otherwise.
 */

/** Where progress goes: stderr, so stdout keeps the summary only. */
export interface ProgressSink {
  write(text: string): void;
  isTerminal: boolean;
}

/** Standard error as a progress sink. */
export function stderrSink(): ProgressSink {
  const encoder = new TextEncoder();
  return {
    write: (text) => Deno.stderr.writeSync(encoder.encode(text)),
    isTerminal: Deno.stderr.isTerminal(),
  };
}

const PLAIN_EVERY_MS = 5000;
const BAR_EVERY_MS = 200;
const BAR_WIDTH = 30;

/** Counts rows against a target revision and reports the rate. */
export class Progress {
  readonly #started = performance.now();
  #rows = 0;
  #last = 0;

  /** Copies ids `from` → `to` (the revisions left to copy). */
  constructor(
    private readonly sink: ProgressSink,
    private readonly from: number,
    private readonly to: number,
  ) {}

  get rows(): number {
    return this.#rows;
  }

  /** Rows per second so far. */
  rate(): number {
    const s = (performance.now() - this.#started) / 1000;
    return s > 0 ? this.#rows / s : 0;
  }

  /** Seconds since the copy began. */
  elapsed(): number {
    return (performance.now() - this.#started) / 1000;
  }

  /** Records `rows` more rows copied, up to revision `head`. */
  add(rows: number, head: number): void {
    this.#rows += rows;
    const now = performance.now();
    if (now - this.#last < (this.sink.isTerminal ? BAR_EVERY_MS : PLAIN_EVERY_MS)) return;
    this.#last = now;
    this.sink.write(this.#line(head));
  }

  /** Ends the progress display (a newline after the bar). */
  done(head: number): void {
    if (this.sink.isTerminal) this.sink.write(this.#line(head) + "\n");
  }

  #line(head: number): string {
    const span = Math.max(this.to - this.from, 1);
    const share = Math.min(Math.max((head - this.from) / span, 0), 1);
    const rate = this.rate();
    const idsPerSec = (head - this.from) / Math.max(this.elapsed(), 0.001);
    const eta = idsPerSec > 0 ? Math.round((this.to - head) / idsPerSec) : 0;
    const text = `${this.#rows} rows, revision ${head}/${this.to}, ` +
      `${Math.round(rate)} rows/s, ETA ${eta}s`;
    if (!this.sink.isTerminal) return `copy: ${text}\n`;
    const filled = Math.round(share * BAR_WIDTH);
    return `\r[${"#".repeat(filled)}${" ".repeat(BAR_WIDTH - filled)}] ` +
      `${(share * 100).toFixed(1)}% ${text}\x1b[K`;
  }
}
