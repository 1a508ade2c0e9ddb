// How many routers are alive in the cluster: the records under
// <prefix>/routers/ (router-registration.ts), each on a lease, so a router
// that stops or loses etcd drops out within REGISTRATION_TTL. The primary
// counts them every COUNT_INTERVAL (one range count, keys only) and tells its
// workers when the number changes: a route's rateLimit holds for the cluster
// because each router enforces its 1/N share (router/middleware/cluster-share.ts).
// When etcd does not answer, the last count stays (never 0: this router is alive).
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../common/logger.ts';

const COUNT_INTERVAL = 2000;
const COUNT_TIMEOUT = 3000;

export class RouterCount {
  readonly #client: Etcd3;
  readonly #prefix: string;
  readonly #onChange: (count: number) => void;
  readonly #log: Logger;
  #count = 1;
  #timer: NodeJS.Timeout | undefined;
  #counting = false;

  constructor(client: Etcd3, prefix: string, onChange: (count: number) => void, log: Logger) {
    this.#client = client;
    this.#prefix = prefix;
    this.#onChange = onChange;
    this.#log = log;
  }

  get count(): number {
    return this.#count;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#refresh(), COUNT_INTERVAL);
    this.#timer.unref();
    void this.#refresh();
  }

  close(): void {
    clearInterval(this.#timer);
  }

  async #refresh(): Promise<void> {
    if (this.#counting) return;
    this.#counting = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const counted = await Promise.race([
        this.#client.getAll().prefix(this.#prefix).count(),
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('etcd did not answer')), COUNT_TIMEOUT); }),
      ]);
      const count = Math.max(1, counted);
      if (count !== this.#count) {
        this.#log.info({ routers: count, was: this.#count }, 'live routers changed: cluster-wide rate limits re-shared');
        this.#count = count;
        this.#onChange(count);
      }
    } catch {
      // The last count stays; the registration and the watch report etcd's state.
    } finally {
      clearTimeout(timer);
      this.#counting = false;
    }
  }
}
