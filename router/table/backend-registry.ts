// One Backend per address, shared by all instances that announce it and kept
// alive by reference counting: a route change that keeps an address keeps its
// pool and health; the last release drains and closes it.
//
// Draining: requests already on a released backend's pool finish. Its open
// WebSockets stay open for `websocketDrain` ms (the app usually ends them
// itself when it stops), then each is closed cleanly (1001 Going Away). If the
// address comes back meanwhile (a lease lost and renewed), the same Backend, with
// its WebSockets and health, is taken back and nothing is closed.
import { Backend, type BackendOptions } from './backend.ts';

export class BackendRegistry {
  readonly #backends = new Map<string, Backend>();
  /** Released backends with open WebSockets, and the timer that ends them. */
  readonly #draining = new Map<string, { backend: Backend; timer: NodeJS.Timeout }>();
  readonly #options: BackendOptions;
  readonly #websocketDrain: number;
  /** Addresses the primary's health checks find failing: a backend acquired later starts with its verdict. */
  #unhealthy: ReadonlySet<string> = new Set();

  constructor(options: BackendOptions, websocketDrain = 600_000) {
    this.#options = options;
    this.#websocketDrain = websocketDrain;
  }

  acquire(host: string, port: number): Backend {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    let backend = this.#backends.get(address);
    const draining = backend ? undefined : this.#draining.get(address);
    if (draining) {
      clearTimeout(draining.timer);
      this.#draining.delete(address);
      backend = draining.backend;
      this.#backends.set(address, backend);
    }
    if (!backend) {
      backend = new Backend(host, port, this.#options);
      this.#backends.set(address, backend);
    }
    backend.unhealthy = this.#unhealthy.has(address);
    backend.refs++;
    return backend;
  }

  /** The primary's health verdicts: the whole set of failing addresses (so a restarted worker is seeded alike). */
  setUnhealthy(addresses: ReadonlySet<string>): void {
    this.#unhealthy = addresses;
    for (const [address, backend] of this.#backends) backend.unhealthy = addresses.has(address);
  }

  release(backend: Backend): void {
    if (--backend.refs > 0) return;
    if (this.#backends.get(backend.address) === backend) this.#backends.delete(backend.address);
    // Requests already on it finish (its upstream pools close once idle); nothing new is routed to it.
    if (backend.websockets.size > 0) {
      const timer = setTimeout(() => {
        if (this.#draining.get(backend.address)?.backend !== backend) return;
        this.#draining.delete(backend.address);
        for (const ws of [...backend.websockets]) ws.goAway('backend removed');
      }, this.#websocketDrain);
      timer.unref();
      this.#draining.set(backend.address, { backend, timer });
    }
  }

  get size(): number {
    return this.#backends.size;
  }

  /** Forgets every backend and stops the WebSocket drain timers. */
  close(): void {
    for (const { timer } of this.#draining.values()) clearTimeout(timer);
    this.#draining.clear();
    this.#backends.clear();
  }
}
