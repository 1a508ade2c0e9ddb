// Requests per second and the share of 5xx answers, per service and backend, from
// the router's own cumulative counters (the sums the metrics aggregator makes for
// /metrics): the difference between the latest sums and those of about WINDOW
// ago. Nothing is counted a second time; this only subtracts two sums.
import { pairKey } from '../metrics/metrics-aggregator.ts';

/** Rates cover about this much time (the page polls every 2 s; a scrape-like window smooths bursts). */
const WINDOW = 10_000;
/** Below this much time between two sums, no rate is given rather than a noisy one. */
const MIN_SPAN = 500;

export interface Rate {
  /** Requests per second. */
  readonly rps: number;
  /** 5xx answers / all answers in the window; null without requests. */
  readonly errorShare: number | null;
}

interface Sample {
  readonly at: number;
  /** pairKey(service, backend) → [requests, 5xx] */
  readonly totals: ReadonlyMap<string, readonly [number, number]>;
}

export class RequestRates {
  #samples: Sample[] = [];

  /** Records the current sums (per pairKey, counts by status class 1xx…5xx) and returns the rates over the window. */
  observe(requests: ReadonlyMap<string, readonly number[]>, now: number): RateReader {
    const totals = new Map<string, readonly [number, number]>();
    for (const [key, counts] of requests) totals.set(key, [counts.reduce((a, b) => a + b, 0), counts[4] ?? 0]);
    this.#samples.push({ at: now, totals });
    // Keep the newest sample at or before the window's start as the base.
    while (this.#samples.length > 2 && this.#samples[1].at <= now - WINDOW) this.#samples.shift();
    const base = this.#samples[0];
    const span = now - base.at;
    return new RateReader(span >= MIN_SPAN ? base.totals : null, totals, span / 1000);
  }
}

export class RateReader {
  readonly #base: ReadonlyMap<string, readonly [number, number]> | null;
  readonly #current: ReadonlyMap<string, readonly [number, number]>;
  readonly #seconds: number;

  constructor(base: ReadonlyMap<string, readonly [number, number]> | null, current: ReadonlyMap<string, readonly [number, number]>, seconds: number) {
    this.#base = base;
    this.#current = current;
    this.#seconds = seconds;
  }

  /** The rate of one service over the given backends ('' = answered by no backend); null before there are two samples. */
  of(service: string, backends: readonly string[]): Rate | null {
    if (this.#base === null) return null;
    let requests = 0;
    let errors = 0;
    for (const backend of backends) {
      const key = pairKey(service, backend);
      const now = this.#current.get(key) ?? [0, 0];
      const then = this.#base.get(key) ?? [0, 0];
      // A backend that left and came back starts its counters again: count from zero.
      const reset = now[0] < then[0];
      requests += reset ? now[0] : now[0] - then[0];
      errors += reset ? now[1] : now[1] - then[1];
    }
    return { rps: requests / this.#seconds, errorShare: requests === 0 ? null : errors / requests };
  }
}
