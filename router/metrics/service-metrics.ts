// A service's request counters in one worker: requests by backend and status
// class, and a latency histogram. Recording a request is a few array stores
// into structures made when a backend first answers: no allocation, no label
// strings, no lookup other than one Map.get per request. Label strings are built
// by the primary when it renders a scrape (metrics-exposition.ts).
import type { Backend } from '../table/backend.ts';

/** Upper bounds of the latency histogram, seconds (Prometheus' `le`). */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Requests per status class: index 0 = 1xx … 4 = 5xx. */
export type ClassCounts = Float64Array;

export interface ServiceMetricsSnapshot {
  readonly service: string;
  /** [backend address ('' = none reached), 1xx, 2xx, 3xx, 4xx, 5xx] */
  readonly requests: (string | number)[][];
  /** Per-bucket (not cumulative) counts, the last one for > the largest bound. */
  readonly buckets: number[];
  readonly sum: number;
  readonly count: number;
}

export class ServiceMetrics {
  /** Keyed by the Backend object (null = the request reached no backend). */
  readonly #byBackend = new Map<Backend | null, ClassCounts>();
  readonly #buckets = new Float64Array(DURATION_BUCKETS.length + 1);
  #sum = 0;
  #count = 0;

  /** Counts one finished request; `seconds` from its head to the end of its response. */
  record(backend: Backend | null, status: number, seconds: number): void {
    this.count(backend, status);
    let i = 0;
    const n = DURATION_BUCKETS.length;
    while (i < n && seconds > DURATION_BUCKETS[i]) i++;
    this.#buckets[i]++;
    this.#sum += seconds;
    this.#count++;
  }

  /** Counts a request without timing it (a WebSocket upgrade: its lifetime is not a latency). */
  count(backend: Backend | null, status: number): void {
    let counts = this.#byBackend.get(backend);
    if (counts === undefined) {
      counts = new Float64Array(5);
      this.#byBackend.set(backend, counts);
    }
    let cls = ((status / 100) | 0) - 1;
    if (cls < 0) cls = 0;
    else if (cls > 4) cls = 4;
    counts[cls]++;
  }

  /** Drops the counters of backends that left the service (their series end; see README). */
  retain(current: ReadonlySet<Backend>): void {
    for (const backend of this.#byBackend.keys()) {
      if (backend !== null && !current.has(backend)) this.#byBackend.delete(backend);
    }
  }

  snapshot(service: string): ServiceMetricsSnapshot | null {
    if (this.#byBackend.size === 0) return null;
    const requests: (string | number)[][] = [];
    for (const [backend, counts] of this.#byBackend) requests.push([backend?.address ?? '', ...counts]);
    return { service, requests, buckets: [...this.#buckets], sum: this.#sum, count: this.#count };
  }
}
