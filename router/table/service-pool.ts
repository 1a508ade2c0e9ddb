// A service's instances (config) and the balancing state over them. The lists
// read on the hot path are immutable arrays replaced on change, so a request
// that already picked from them is never affected by an update.
import type { Backend } from './backend.ts';
import { ServiceMetrics } from '../metrics/service-metrics.ts';

export interface InstanceEntry {
  readonly instance: string;
  readonly backend: Backend;
  readonly weight: number;
}

export class ServicePool {
  readonly name: string;
  readonly #instances = new Map<string, InstanceEntry>();
  /** Current instances, in announcement order. */
  entries: readonly InstanceEntry[] = [];
  /** Round-robin order: each backend appears `weight` times, smoothly interleaved. */
  schedule: readonly Backend[] = [];
  /** Current backends by address (a sticky cookie names one). */
  byAddress: ReadonlyMap<string, Backend> = new Map();
  /**
   * Next index into `schedule` (round-robin state survives updates). Starts at
   * a random place so that the workers of a node, each with its own cursor, do
   * not all send their first requests to the same backend.
   */
  cursor = Math.floor(Math.random() * 0x7fffffff);
  /** This worker's request counters for the service (they live as long as the pool). */
  readonly metrics = new ServiceMetrics();

  constructor(name: string) {
    this.name = name;
  }

  get size(): number {
    return this.#instances.size;
  }

  /** Sets an instance; returns the backend it replaces (for the caller to release), if any. */
  set(instance: string, backend: Backend, weight: number): Backend | undefined {
    const previous = this.#instances.get(instance);
    this.#instances.set(instance, { instance, backend, weight });
    this.#rebuild();
    return previous?.backend;
  }

  /** Removes an instance; returns its backend for the caller to release. */
  delete(instance: string): Backend | undefined {
    const previous = this.#instances.get(instance);
    if (!previous) return undefined;
    this.#instances.delete(instance);
    this.#rebuild();
    return previous.backend;
  }

  #rebuild(): void {
    this.entries = [...this.#instances.values()];
    this.schedule = smoothWeightedOrder(this.entries);
    this.byAddress = new Map(this.entries.map((e) => [e.backend.address, e.backend]));
    this.metrics.retain(new Set(this.entries.map((e) => e.backend)));
  }
}

/**
 * nginx's smooth weighted round-robin, unrolled once per update into a fixed
 * order so that picking is O(1) per request: weights 5,1,1 give a a b a c a a.
 */
function smoothWeightedOrder(entries: readonly InstanceEntry[]): Backend[] {
  if (entries.every((e) => e.weight === entries[0].weight)) return entries.map((e) => e.backend);
  const total = entries.reduce((sum, e) => sum + e.weight, 0);
  const current = entries.map(() => 0);
  const order: Backend[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < entries.length; i++) {
      current[i] += entries[i].weight;
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    order.push(entries[best].backend);
  }
  return order;
}
