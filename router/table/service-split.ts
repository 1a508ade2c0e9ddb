// A route's weighted split between services (`"services": [...]`): nginx's
// smooth weighted round-robin over the services' pools, unrolled once per rule
// into a fixed order so that a request costs one array read (weights 90/10 give
// nine of one, one of the other, interleaved, in every 10 requests: the share
// holds exactly over any whole cycle, per worker). A new rule makes a new split,
// swapped in with the route, so a change is atomic for every request after it.
import type { ServicePool } from './service-pool.ts';

export class ServiceSplit {
  /** The pools in the rule's order, weight 0 included (their sticky clients stay). */
  readonly pools: readonly ServicePool[];
  readonly #order: readonly ServicePool[];
  /** Starts at a random place, so a node's workers do not move in step. */
  #cursor = Math.floor(Math.random() * 0x7fffffff);

  constructor(entries: readonly { readonly pool: ServicePool; readonly weight: number }[]) {
    this.pools = entries.map((e) => e.pool);
    this.#order = smoothWeightedOrder(entries);
  }

  /** The next service by weight; one with no instance passes its turn to the next that has one. */
  next(): ServicePool {
    const order = this.#order;
    let index = this.#cursor;
    if (index >= order.length) index %= order.length;
    this.#cursor = index + 1;
    const pool = order[index];
    if (pool.size > 0) return pool;
    // A split to a service that has no instance yet must not turn its share into 503s.
    for (const other of this.pools) if (other.size > 0) return other;
    return pool;
  }
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

function smoothWeightedOrder(entries: readonly { readonly pool: ServicePool; readonly weight: number }[]): ServicePool[] {
  const live = entries.filter((e) => e.weight > 0);
  const divisor = live.reduce((g, e) => gcd(g, e.weight), 0);
  const weights = live.map((e) => e.weight / divisor);
  const total = weights.reduce((sum, w) => sum + w, 0);
  const current = weights.map(() => 0);
  const order: ServicePool[] = [];
  for (let n = 0; n < total; n++) {
    let best = 0;
    for (let i = 0; i < live.length; i++) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= total;
    order.push(live[best].pool);
  }
  return order;
}
