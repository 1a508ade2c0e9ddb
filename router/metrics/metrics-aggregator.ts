// The primary's side of metrics: on a scrape it asks every worker for a
// snapshot over IPC (answered within `timeout`, or the worker's last snapshot
// stands in) and sums them. Counters stay monotonic when a worker dies: its last
// snapshot's counters are kept as "retired" and added to every later sum.
import type { Worker } from 'node:cluster';
import type { ServiceMetricsSnapshot } from './service-metrics.ts';
import type { WorkerMetricsSnapshot } from './worker-metrics.ts';

export interface Histogram {
  readonly buckets: number[];
  sum: number;
  count: number;
}

export interface BackendState {
  ejected: number;
  ejections: number;
  active: number;
  /** Epoch ms the latest ejection in any worker ends (0 = none): each worker ejects on its own. */
  ejectedUntil: number;
}

/** Every worker's metrics summed; keys of per-backend maps are `service \0 backend`. */
export interface MergedMetrics {
  readonly requests: Map<string, number[]>;
  readonly durations: Map<string, Histogram>;
  readonly unrouted: Map<number, number>;
  readonly backends: Map<string, BackendState>;
  readonly connections: { http: number; https: number };
  websockets: number;
  websocketsTotal: number;
  /** Mirror copies: answered, failed, skipped. */
  mirrors: [number, number, number];
  tlsHandshakeErrors: number;
}

export function emptyMetrics(): MergedMetrics {
  return {
    requests: new Map(),
    durations: new Map(),
    unrouted: new Map(),
    backends: new Map(),
    connections: { http: 0, https: 0 },
    websockets: 0,
    websocketsTotal: 0,
    mirrors: [0, 0, 0],
    tlsHandshakeErrors: 0,
  };
}

export const pairKey = (service: string, backend: string): string => `${service}\u0000${backend}`;

export class MetricsAggregator {
  readonly #latest = new Map<Worker, WorkerMetricsSnapshot>();
  /** Counters of workers that exited. */
  readonly #retired = emptyMetrics();
  readonly #pending = new Map<number, { waiting: Set<Worker>; done: () => void }>();
  #nextId = 1;

  /** Asks `workers` for fresh snapshots and sums them (with the retired counters). */
  async collect(workers: readonly Worker[], send: (worker: Worker, id: number) => void, timeout = 500): Promise<MergedMetrics> {
    const id = this.#nextId++;
    const waiting = new Set(workers);
    if (waiting.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeout);
        function done(): void {
          clearTimeout(timer);
          resolve();
        }
        this.#pending.set(id, { waiting, done });
        for (const worker of workers) send(worker, id);
      });
      this.#pending.delete(id);
    }
    const merged = emptyMetrics();
    mergeCounters(merged, this.#retired);
    for (const worker of workers) {
      const snapshot = this.#latest.get(worker);
      if (snapshot !== undefined) mergeSnapshot(merged, snapshot);
    }
    return merged;
  }

  /** A worker's answer to a request. */
  receive(worker: Worker, id: number, snapshot: WorkerMetricsSnapshot): void {
    this.#latest.set(worker, snapshot);
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    pending.waiting.delete(worker);
    if (pending.waiting.size === 0) pending.done();
  }

  /** A worker exited: keep its counters, drop its gauges. */
  retire(worker: Worker): void {
    const snapshot = this.#latest.get(worker);
    this.#latest.delete(worker);
    for (const pending of this.#pending.values()) {
      pending.waiting.delete(worker);
      if (pending.waiting.size === 0) pending.done();
    }
    if (snapshot === undefined) return;
    const asMerged = emptyMetrics();
    mergeSnapshot(asMerged, snapshot);
    mergeCounters(this.#retired, asMerged);
  }
}

function mergeSnapshot(into: MergedMetrics, snapshot: WorkerMetricsSnapshot): void {
  for (const service of snapshot.services) mergeService(into, service);
  for (const [status, count] of snapshot.unrouted) into.unrouted.set(status, (into.unrouted.get(status) ?? 0) + count);
  for (const [service, backend, ejected, ejections, active, ejectedUntil = 0] of snapshot.backends) {
    const key = pairKey(service, backend);
    const state = into.backends.get(key);
    if (state === undefined) into.backends.set(key, { ejected, ejections, active, ejectedUntil });
    else {
      state.ejected = Math.max(state.ejected, ejected);
      state.ejections += ejections;
      state.active += active;
      state.ejectedUntil = Math.max(state.ejectedUntil, ejectedUntil);
    }
  }
  into.connections.http += snapshot.connections.http;
  into.connections.https += snapshot.connections.https;
  into.websockets += snapshot.websockets;
  into.websocketsTotal += snapshot.websocketsTotal;
  for (let i = 0; i < 3; i++) into.mirrors[i] += snapshot.mirrors[i];
  into.tlsHandshakeErrors += snapshot.tlsHandshakeErrors;
}

function mergeService(into: MergedMetrics, service: ServiceMetricsSnapshot): void {
  for (const [backend, ...counts] of service.requests) {
    const key = pairKey(service.service, backend as string);
    const sum = into.requests.get(key);
    if (sum === undefined) into.requests.set(key, counts as number[]);
    else for (let i = 0; i < sum.length; i++) sum[i] += counts[i] as number;
  }
  addHistogram(into, service.service, service);
}

function addHistogram(into: MergedMetrics, service: string, from: { buckets: number[]; sum: number; count: number }): void {
  const histogram = into.durations.get(service);
  if (histogram === undefined) into.durations.set(service, { buckets: [...from.buckets], sum: from.sum, count: from.count });
  else {
    for (let i = 0; i < histogram.buckets.length; i++) histogram.buckets[i] += from.buckets[i];
    histogram.sum += from.sum;
    histogram.count += from.count;
  }
}

/** Adds only the counters of `from` (gauges of an exited worker are gone with it). */
function mergeCounters(into: MergedMetrics, from: MergedMetrics): void {
  for (const [key, counts] of from.requests) {
    const sum = into.requests.get(key);
    if (sum === undefined) into.requests.set(key, [...counts]);
    else for (let i = 0; i < sum.length; i++) sum[i] += counts[i];
  }
  for (const [service, histogram] of from.durations) addHistogram(into, service, histogram);
  for (const [status, count] of from.unrouted) into.unrouted.set(status, (into.unrouted.get(status) ?? 0) + count);
  for (const [key, state] of from.backends) {
    const current = into.backends.get(key);
    if (current === undefined) into.backends.set(key, { ejected: 0, ejections: state.ejections, active: 0, ejectedUntil: 0 });
    else current.ejections += state.ejections;
  }
  into.websocketsTotal += from.websocketsTotal;
  into.tlsHandshakeErrors += from.tlsHandshakeErrors;
  for (let i = 0; i < 3; i++) into.mirrors[i] += from.mirrors[i];
}
