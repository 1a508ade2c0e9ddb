// Rates from a component's own cumulative counters, for the dashboards: the
// difference between the latest sums and those of about WINDOW ago, divided by
// the time between them. Nothing is counted a second time; this only subtracts
// two sums (the router's, summed over its workers; the registry's).
/** Rates cover about this much time (the pages poll every 2 s; a scrape-like window smooths bursts). */
const WINDOW = 10_000;
/** Below this much time between two sums, no rate is given rather than a noisy one. */
const MIN_SPAN = 500;

/** Counters by key; each key's counters are a vector (e.g. counts by status class). */
export type CounterTotals = ReadonlyMap<string, readonly number[]>;

interface Sample {
  readonly at: number;
  readonly totals: CounterTotals;
}

export class CounterRates {
  #samples: Sample[] = [];

  /** Records the current sums and returns the window from about WINDOW ago to now. */
  observe(totals: CounterTotals, now: number): CounterWindow {
    // Copied: the caller may keep adding to its arrays.
    const copy = new Map<string, readonly number[]>();
    for (const [key, counts] of totals) copy.set(key, [...counts]);
    this.#samples.push({ at: now, totals: copy });
    // Keep the newest sample at or before the window's start as the base.
    while (this.#samples.length > 2 && this.#samples[1].at <= now - WINDOW) this.#samples.shift();
    const base = this.#samples[0];
    const span = now - base.at;
    return new CounterWindow(span >= MIN_SPAN ? base.totals : null, copy, span / 1000);
  }
}

export class CounterWindow {
  readonly #base: CounterTotals | null;
  readonly #current: CounterTotals;
  /** Seconds the window covers; null before there are two samples far enough apart. */
  readonly seconds: number | null;

  constructor(base: CounterTotals | null, current: CounterTotals, seconds: number) {
    this.#base = base;
    this.#current = current;
    this.seconds = base === null ? null : seconds;
  }

  /** The counters of these keys now, summed (since the component started). */
  total(keys: Iterable<string>): number[] {
    const sum: number[] = [];
    for (const key of keys) addInto(sum, this.#current.get(key) ?? []);
    return sum;
  }

  /** What each counter of these keys added over the window, summed over the keys; null before there is a window. */
  increase(keys: Iterable<string>): number[] | null {
    if (this.#base === null) return null;
    const sum: number[] = [];
    for (const key of keys) {
      const now = this.#current.get(key) ?? [];
      const then = this.#base.get(key) ?? [];
      // A counter that went down started again (a backend that left and came back): count from zero.
      const reset = now.some((value, i) => value < (then[i] ?? 0));
      addInto(sum, reset ? now : now.map((value, i) => value - (then[i] ?? 0)));
    }
    return sum;
  }

  /** increase() per second. */
  perSecond(keys: Iterable<string>): number[] | null {
    const added = this.increase(keys);
    return added === null ? null : added.map((value) => value / this.seconds!);
  }
}

export interface RequestRate {
  /** Requests per second. */
  readonly rps: number;
  /** 5xx answers / all answers in the window; null without requests. */
  readonly errorShare: number | null;
}

/** Requests per second and the 5xx share, for keys whose counters are counts by status class (1xx…5xx). */
export function requestRate(window: CounterWindow, keys: Iterable<string>): RequestRate | null {
  const added = window.increase(keys);
  if (added === null) return null;
  const requests = added.reduce((a, b) => a + b, 0);
  return { rps: requests / window.seconds!, errorShare: requests === 0 ? null : (added[4] ?? 0) / requests };
}

function addInto(sum: number[], values: readonly number[]): void {
  for (let i = 0; i < values.length; i++) sum[i] = (sum[i] ?? 0) + values[i];
}
