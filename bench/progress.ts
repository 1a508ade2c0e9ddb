// What the bench is doing now. On a terminal: one status line, rewritten in place
// ("[3/12] small c=50: round 2/5, tug"), with result lines printed above it. Not
// on a terminal (CI, a file): every status and result is its own line.
export class BenchProgress {
  readonly #out: NodeJS.WriteStream;
  readonly #tty: boolean;
  #status = '';

  constructor(out: NodeJS.WriteStream = process.stdout) {
    this.#out = out;
    this.#tty = out.isTTY === true;
  }

  /** The step starting now. */
  status(text: string): void {
    if (!this.#tty) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#status = text.length > this.#width() ? `${text.slice(0, this.#width() - 1)}…` : text;
    this.#out.write(`\r\x1b[2K${this.#status}`);
  }

  /** A line to keep (a result, a heading). */
  line(text: string): void {
    if (!this.#tty) {
      this.#out.write(`${text}\n`);
      return;
    }
    this.#out.write(`\r\x1b[2K${text}\n${this.#status}`);
  }

  /** Clears the status line (before the report). */
  done(): void {
    if (this.#tty && this.#status !== '') this.#out.write('\r\x1b[2K');
    this.#status = '';
  }

  #width(): number {
    return Math.max(20, (this.#out.columns ?? 80) - 1);
  }
}
