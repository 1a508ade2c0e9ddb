// What `tug registry gc` tells a person watching it: which phase it is in and
// how far it got. On a terminal, one line that updates in place; otherwise
// (a log file, CI, a systemd journal) a line per phase and per 10 % step, so
// the record stays short and still says how far a run got before it stopped.
// Always on stderr: stdout carries the machine-readable report.

export interface GcProgress {
  /** A new phase; `total` when it is known (manifests to read, blobs to delete). */
  phase(name: string, total?: number): void;
  /** `n` more items of the current phase done. */
  advance(n?: number): void;
  /** The current phase is over; `summary` says what it found. */
  end(summary?: string): void;
}

/** Lines of a phase whose total is unknown: one every this many items. */
const COUNT_STEP = 10_000;
/** The in-place line is redrawn at most this often. */
const REDRAW_MS = 100;

export function gcProgress(stream: NodeJS.WriteStream = process.stderr): GcProgress {
  return stream.isTTY ? new TerminalProgress(stream) : new LineProgress(stream);
}

/** Reports nothing (the collector's default, and for tests). */
export const silentProgress: GcProgress = { phase() {}, advance() {}, end() {} };

abstract class PhaseCounter implements GcProgress {
  protected name = '';
  protected total: number | undefined;
  protected done = 0;

  phase(name: string, total?: number): void {
    this.name = name;
    this.total = total;
    this.done = 0;
    this.started();
  }

  advance(n = 1): void {
    const before = this.done;
    this.done += n;
    this.advanced(before);
  }

  abstract end(summary?: string): void;
  protected abstract started(): void;
  protected abstract advanced(before: number): void;

  protected describe(): string {
    if (this.total === undefined) return `gc: ${this.name}: ${this.done}`;
    const percent = this.total === 0 ? 100 : Math.floor((this.done * 100) / this.total);
    return `gc: ${this.name}: ${this.done}/${this.total} (${percent}%)`;
  }
}

class LineProgress extends PhaseCounter {
  readonly #stream: NodeJS.WritableStream;

  constructor(stream: NodeJS.WritableStream) {
    super();
    this.#stream = stream;
  }

  protected started(): void {
    this.#stream.write(`${this.describe()}\n`);
  }

  protected advanced(before: number): void {
    const step = (n: number) => (this.total === undefined ? Math.floor(n / COUNT_STEP) : this.total === 0 ? 10 : Math.floor((n * 10) / this.total));
    if (step(this.done) > step(before)) this.#stream.write(`${this.describe()}\n`);
  }

  end(summary?: string): void {
    this.#stream.write(`gc: ${this.name}: done${summary ? `, ${summary}` : ''}\n`);
  }
}

class TerminalProgress extends PhaseCounter {
  readonly #stream: NodeJS.WritableStream;
  #drawnAt = 0;

  constructor(stream: NodeJS.WritableStream) {
    super();
    this.#stream = stream;
  }

  protected started(): void {
    this.#draw();
  }

  protected advanced(): void {
    if (Date.now() - this.#drawnAt >= REDRAW_MS || this.done === this.total) this.#draw();
  }

  end(summary?: string): void {
    // The finished phase stays on screen; the next one starts on a new line.
    this.#stream.write(`\r\x1b[Kgc: ${this.name}: done${summary ? `, ${summary}` : ''}\n`);
  }

  #draw(): void {
    this.#drawnAt = Date.now();
    this.#stream.write(`\r\x1b[K${this.describe()}`);
  }
}
