// Continuous, bounded load through the load balancer: idempotent GETs over a
// few keep-alive connections (undici), at most `rate` requests a second and
// until stop() or `maxDuration`, recording every request. The app always
// answers 200, so a request is ok only with a complete 200 response; it fails
// on a connection error, a reset, a timeout after `timeout` ms, a truncated
// body, or any other status (502/503/504 from the router, a 404 from a route
// that vanished). Nothing is retried here: what the client would see is counted.
import { Pool } from 'undici';
import { sleep } from '../wait.ts';

export interface RequestRecord {
  /** Date.now() when the request was sent. */
  readonly start: number;
  readonly ms: number;
  /** The status, or 0 when there was no complete response. */
  readonly status: number;
  readonly ok: boolean;
  /** Which app instance answered (X-Backend), or the error's code. */
  readonly detail: string;
}

export interface LoadOptions {
  /** Host header: which app the requests are for. */
  readonly host: string;
  readonly path?: string;
  readonly connections?: number;
  /**
   * Requests in flight at most (default 4 × connections): more than the connections, so that a few
   * requests hanging on a dead connection do not stall the load (undici queues the rest).
   */
  readonly concurrency?: number;
  /** Requests per second at most, over all connections. */
  readonly rate?: number;
  /** Per-request bound, ms. */
  readonly timeout?: number;
  /** Hard bound on the run, ms. */
  readonly maxDuration?: number;
}

export interface LoadSummary {
  readonly sent: number;
  readonly failed: number;
  readonly ok: number;
  /** Failed requests by status or error code. */
  readonly failures: Record<string, number>;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export class LoadGenerator {
  readonly records: RequestRecord[] = [];
  readonly #pool: Pool;
  readonly #options: Required<LoadOptions>;
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(url: string, options: LoadOptions) {
    this.#options = { path: '/', connections: 4, concurrency: 4 * (options.connections ?? 4), rate: 200, timeout: 5000, maxDuration: 120_000, ...options };
    this.#pool = new Pool(url, {
      connections: this.#options.connections,
      pipelining: 1,
      headersTimeout: this.#options.timeout,
      bodyTimeout: this.#options.timeout,
      connectTimeout: this.#options.timeout,
    });
    const deadline = Date.now() + this.#options.maxDuration;
    // Each of `concurrency` loops sends at most one request per `perLoop` ms: `rate` in all.
    const perLoop = 1000 * this.#options.concurrency / this.#options.rate;
    this.#done = Promise.all(Array.from({ length: this.#options.concurrency }, async () => {
      while (!this.#stopped && Date.now() < deadline) {
        const started = Date.now();
        await this.#one();
        const rest = perLoop - (Date.now() - started);
        if (rest > 0) await sleep(rest);
      }
    })).then(() => {});
  }

  async #one(): Promise<void> {
    const start = Date.now();
    try {
      const res = await this.#pool.request({
        method: 'GET',
        path: this.#options.path,
        headers: { host: this.#options.host },
        signal: AbortSignal.timeout(this.#options.timeout),
      });
      await res.body.text();
      const backend = res.headers['x-backend'];
      this.records.push({ start, ms: Date.now() - start, status: res.statusCode, ok: res.statusCode === 200, detail: typeof backend === 'string' ? backend : '' });
    } catch (err) {
      const e = err as { code?: unknown; name?: string };
      // AbortSignal.timeout's DOMException has a numeric legacy code (23): name it instead.
      const detail = e.name === 'TimeoutError' ? 'timeout' : typeof e.code === 'string' ? e.code : e.name ?? 'error';
      this.records.push({ start, ms: Date.now() - start, status: 0, ok: false, detail });
    }
  }

  /** Stops sending, waits for the requests in flight, closes the connections; returns the summary. */
  async stop(): Promise<LoadSummary> {
    this.#stopped = true;
    await this.#done;
    await this.#pool.close();
    return summarize(this.records);
  }

  /** Requests sent so far. */
  get sent(): number {
    return this.records.length;
  }
}

export function summarize(records: readonly RequestRecord[]): LoadSummary {
  const failures: Record<string, number> = {};
  for (const r of records) {
    if (r.ok) continue;
    const key = r.status === 0 ? r.detail : String(r.status);
    failures[key] = (failures[key] ?? 0) + 1;
  }
  const times = records.map((r) => r.ms).sort((a, b) => a - b);
  const at = (q: number) => (times.length === 0 ? 0 : times[Math.min(times.length - 1, Math.floor(q * times.length))]);
  const failed = records.filter((r) => !r.ok).length;
  return { sent: records.length, failed, ok: records.length - failed, failures, p50: at(0.5), p99: at(0.99), max: times.at(-1) ?? 0 };
}
