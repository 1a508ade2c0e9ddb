// A bound on how many of one costly thing run at once (bcrypt checks), with a
// bounded queue behind it: beyond both, the work is refused at once instead of
// piling up, so a flood of bad passwords costs the node at most `concurrency`
// cores and `queue` waiting requests, never its memory or every request's latency.

export class ConcurrencyLimit {
  readonly #concurrency: number;
  readonly #queueLimit: number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;

  constructor(concurrency: number, queueLimit: number) {
    this.#concurrency = concurrency;
    this.#queueLimit = queueLimit;
  }

  /** Runs `work` when a slot is free; `refused()` (thrown) when the queue is full too. */
  async run<T>(work: () => Promise<T>, refused: () => Error): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#queueLimit) throw refused();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await work();
    } finally {
      // The slot passes straight to the next in line, so the count never dips and overshoots.
      const next = this.#waiting.shift();
      if (next) next();
      else this.#running--;
    }
  }
}
