// The share of a cluster-wide limit one worker enforces: 1 / (live routers ×
// workers per router). The primary counts the routers' records under
// /routers/ in etcd (router-count.ts) and tells its workers; the workers of a
// router split its share evenly because the kernel spreads connections over
// them (SO_REUSEPORT hashes each connection's addresses), which is even for
// many connections and uneven for a few. See router/middleware/README.md.

export class ClusterShare {
  #routers = 1;
  readonly #workers: number;
  /** The fraction of a cluster-wide rate this worker admits. */
  fraction: number;

  constructor(workers: number) {
    this.#workers = Math.max(1, workers);
    this.fraction = 1 / this.#workers;
  }

  get routers(): number {
    return this.#routers;
  }

  /** The number of live routers changed (never below 1: this one is alive). */
  setRouters(count: number): void {
    this.#routers = Math.max(1, Math.floor(count));
    this.fraction = 1 / (this.#routers * this.#workers);
  }
}
