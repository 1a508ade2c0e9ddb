// Gives back the memory a worker's heap grew for a burst once the worker goes
// quiet. Under load V8 grows the young generation (up to two 16 MiB semi-spaces)
// and shrinks it only in a GC that runs while allocation is slow; a worker that
// then holds idle keep-alive connections allocates nothing, collects nothing, and
// keeps the burst's young generation for good (measured: ~22 MiB of a worker's
// 120 MiB with 5k idle connections). A smaller young generation for good
// (--max-semi-space-size=4) cost 2–4% throughput; this costs one GC per quiet spell.
//
// Every `interval` ms: if the process spent under 2% of a core since the previous
// check and its heap has grown by 4 MiB since the last reduction (the first quiet
// check after start-up always counts as grown), one memory-reducing full GC runs
// (V8's gc extension, flavor `last-resort`: what V8 itself runs under memory
// pressure; 35–150 ms for a worker holding 5k connections on this loaded machine —
// a request arriving then waits that long).
//
// The gc extension comes from --expose-gc set at run time, once every module is
// loaded: a worker started with the flag would not match the V8 flags its compile
// cache was written under (worker-compile-cache.ts), and would compile every module
// again (+18 MiB at start, measured).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc extension, as --expose-gc installs it. */
export type ExposedGc = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** How often a worker checks whether it went quiet, ms: a reduction comes 1–2 intervals after a burst. */
export const QUIET_CHECK_INTERVAL = 5000;
/** Share of one core under which the process counts as quiet. */
const QUIET_CPU_SHARE = 0.02;
/** Heap growth since the last reduction that is worth a full GC. */
const WORTH_REDUCING = 4 * 2 ** 20;

export class QuietHeapReducer {
  readonly #gc: ExposedGc;
  readonly #interval: number;
  #cpu = process.cpuUsage();
  #checkedAt = performance.now();
  /** Heap size after the last reduction; none yet, so that the first quiet spell also collects what start-up left. */
  #baseline = 0;
  #timer: NodeJS.Timeout | null = null;
  /** Reductions so far (the tests read it). */
  reductions = 0;

  constructor(gc: ExposedGc, interval = QUIET_CHECK_INTERVAL) {
    this.#gc = gc;
    this.#interval = interval;
  }

  /**
   * A reducer for this process: its gc extension, exposed now if it is not. Call it once the
   * process's modules are loaded (see the top of this file).
   */
  static forThisProcess(interval = QUIET_CHECK_INTERVAL): QuietHeapReducer {
    let gc = (globalThis as { gc?: unknown }).gc;
    if (typeof gc !== 'function') {
      // V8 installs the extension in contexts created after the flag is set: a new one hands it over.
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc');
    }
    return new QuietHeapReducer(gc as ExposedGc, interval);
  }

  start(): void {
    this.#timer ??= setInterval(() => this.check(), this.#interval).unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Runs a reduction if the process has been quiet since the previous check and its heap grew; returns whether it did. */
  check(): boolean {
    const now = performance.now();
    const used = process.cpuUsage(this.#cpu);
    this.#cpu = process.cpuUsage();
    const elapsed = now - this.#checkedAt;
    this.#checkedAt = now;
    const quiet = (used.user + used.system) / 1000 < elapsed * QUIET_CPU_SHARE;
    if (!quiet || getHeapStatistics().total_heap_size < this.#baseline + WORTH_REDUCING) return false;
    this.#gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
    this.#baseline = getHeapStatistics().total_heap_size;
    this.#cpu = process.cpuUsage();
    this.#checkedAt = performance.now();
    this.reductions++;
    return true;
  }
}
