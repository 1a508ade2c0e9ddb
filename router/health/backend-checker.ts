// The active health check of one backend address, in the router's primary: an
// HTTP request (or a TCP connect) every interval, jittered down by up to 10%
// so that checks of many backends (and of many routers) do not move in step;
// `unhealthyAfter` failures in a row take it out, `healthyAfter` passes bring
// it back. A new backend starts in rotation (its first failures take it out).
// Never: runs in a worker, or keeps a connection between checks.
import { request } from 'node:http';
import { connect } from 'node:net';
import type { HealthCheckSpec } from '../etcd/route-keys.ts';

/** What an operator sees of a backend's checks (`/routes`). */
export interface CheckState {
  readonly healthy: boolean;
  readonly check: string;
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  /** ISO time of the last verdict change (or of the first check). */
  readonly since: string;
}

export class BackendChecker {
  readonly address: string;
  readonly #host: string;
  readonly #port: number;
  spec: HealthCheckSpec;
  healthy = true;
  #failures = 0;
  #passes = 0;
  #lastError: string | null = null;
  #since = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #onVerdict: (checker: BackendChecker) => void;

  constructor(host: string, port: number, spec: HealthCheckSpec, onVerdict: (checker: BackendChecker) => void) {
    this.#host = host;
    this.#port = port;
    this.address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.spec = spec;
    this.#onVerdict = onVerdict;
    // The first check at a random point of the first interval: a restarted primary does not burst.
    this.#schedule(Math.random() * spec.interval);
  }

  state(): CheckState {
    const spec = this.spec;
    return {
      healthy: this.healthy,
      check: spec.tcp ? 'tcp' : `http ${spec.path} expect ${spec.expect}`,
      consecutiveFailures: this.#failures,
      lastError: this.#lastError,
      since: new Date(this.#since).toISOString(),
    };
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#check().then((error) => this.#verdict(error));
    }, delay);
    this.#timer.unref();
  }

  #verdict(error: string | null): void {
    if (this.#closed) return;
    const spec = this.spec;
    if (error === null) {
      this.#failures = 0;
      if (!this.healthy && ++this.#passes >= spec.healthyAfter) this.#flip(true);
    } else {
      this.#passes = 0;
      this.#lastError = error;
      if (++this.#failures >= spec.unhealthyAfter && this.healthy) this.#flip(false);
    }
    this.#schedule(spec.interval * (1 - Math.random() * 0.1));
  }

  #flip(healthy: boolean): void {
    this.healthy = healthy;
    this.#passes = 0;
    this.#since = Date.now();
    this.#onVerdict(this);
  }

  /** One check: null when it passes, else why not. */
  #check(): Promise<string | null> {
    const spec = this.spec;
    return new Promise((resolve) => {
      let settled = false;
      const done = (error: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(error);
      };
      const timer = setTimeout(() => {
        done(`no answer within ${spec.timeout}ms`);
        cancel();
      }, spec.timeout);
      let cancel: () => void;
      if (spec.tcp) {
        const socket = connect({ host: this.#host, port: this.#port });
        cancel = () => socket.destroy();
        socket.once('connect', () => {
          socket.destroy();
          done(null);
        });
        socket.once('error', (err) => done(err.message));
      } else {
        const req = request({
          host: this.#host,
          port: this.#port,
          method: 'GET',
          path: spec.path,
          agent: false,
          headers: { host: this.address, 'user-agent': 'tug-health-check', connection: 'close' },
        }, (res) => {
          const status = res.statusCode ?? 0;
          res.resume();
          res.once('error', () => {});
          const pass = spec.expectRanges.some(([low, high]) => status >= low && status <= high);
          done(pass ? null : `status ${status}, expected ${spec.expect}`);
          res.once('end', () => req.destroy());
        });
        cancel = () => req.destroy();
        req.once('error', (err) => done(err.message));
        req.end();
      }
    });
  }
}
