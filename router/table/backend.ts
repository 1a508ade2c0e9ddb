// A backend's live state: its upstream connection pool and its passive health.
// Config (which service, which instance, what weight) lives in ServicePool; this
// object is shared by every instance entry with the same address, so a route or
// weight update never resets a backend's health or drops its keep-alive pool.
/** Passive health settings (the connection settings belong to the upstream pools, http1/upstream-pool.ts). */
export interface BackendOptions {
  /** Consecutive transport failures that eject a backend. */
  readonly maxFails: number;
  /** First ejection period, ms; each ejection in a row doubles it up to ejectMax. */
  readonly ejectBase: number;
  readonly ejectMax: number;
}

/** A long-lived connection through a backend (a WebSocket tunnel) that can be ended cleanly. */
export interface DrainableConnection {
  /** Ends the connection cleanly (a WebSocket gets 1001 Going Away), at once or at its next frame boundary. */
  goAway(reason: string): void;
}

export class Backend {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** Requests in flight, for least-connections and draining. */
  active = 0;
  consecutiveFailures = 0;
  /** Epoch ms until which the backend is ejected; 0 when healthy. */
  ejectedUntil = 0;
  /** Ejections in a row without a success in between; drives the growing period. */
  ejections = 0;
  /**
   * The primary's active health check says it fails (router/health/). Balancers skip a backend that
   * is unhealthy or ejected: out if either says so.
   */
  unhealthy = false;
  /** Ejections since the backend was created (a counter for /metrics). */
  ejectionsTotal = 0;
  /** How many instance entries refer to this backend (owned by BackendRegistry). */
  refs = 0;
  /** Open WebSockets through this backend; they outlive its removal from the table (see BackendRegistry). */
  readonly websockets = new Set<DrainableConnection>();
  readonly #options: BackendOptions;

  constructor(host: string, port: number, options: BackendOptions) {
    this.host = host;
    this.port = port;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.#options = options;
  }

  isEjected(now: number): boolean {
    return this.ejectedUntil > now;
  }

  /** In rotation: neither ejected by passive health nor failing its active checks. */
  isAvailable(now: number): boolean {
    return this.ejectedUntil <= now && !this.unhealthy;
  }

  recordSuccess(): void {
    if (this.consecutiveFailures !== 0 || this.ejections !== 0) {
      this.consecutiveFailures = 0;
      this.ejections = 0;
      this.ejectedUntil = 0;
    }
  }

  /** Counts a transport failure; returns true when it ejected the backend. */
  recordFailure(now: number): boolean {
    if (++this.consecutiveFailures < this.#options.maxFails) return false;
    const period = Math.min(this.#options.ejectBase * 2 ** this.ejections, this.#options.ejectMax);
    this.ejectedUntil = now + period;
    this.ejections++;
    this.ejectionsTotal++;
    // On probation after the period: one more failure ejects it again, for longer.
    this.consecutiveFailures = this.#options.maxFails - 1;
    return true;
  }
}
