// A route's traffic mirror (`"mirror": {"service", "percent"}`): which share of
// its requests is copied to another service. Deterministic, not random: with
// 5% every 20th request is copied, per worker, so a test or an operator sees
// exactly the share asked for.
import type { ServicePool } from './service-pool.ts';

export class TrafficMirror {
  readonly pool: ServicePool;
  readonly percent: number;
  #credit = 0;

  constructor(pool: ServicePool, percent: number) {
    this.pool = pool;
    this.percent = percent;
  }

  /** Whether this request is one to copy. */
  take(): boolean {
    this.#credit += this.percent;
    if (this.#credit < 100) return false;
    this.#credit -= 100;
    return true;
  }
}
