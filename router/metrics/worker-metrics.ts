// One worker's counters and gauges, and the snapshot it sends the primary when
// /metrics is scraped. Counting happens where things happen (service-metrics.ts
// per request, the listeners per connection, the WebSocket proxy per tunnel) as
// plain increments; everything that costs — walking the table, naming label
// values — happens here, once per scrape.
import type { RouteTable } from '../table/route-table.ts';
import type { ServiceMetricsSnapshot } from './service-metrics.ts';

export type ListenerName = 'http' | 'https';

export interface WorkerMetricsSnapshot {
  readonly services: ServiceMetricsSnapshot[];
  /** [status, count] of requests refused before a route was chosen (400, 404, 408, 431, 501, 505). */
  readonly unrouted: [number, number][];
  /** [service, backend address, ejected now (0|1), ejections so far, requests in flight, ejected until (epoch ms, 0 = not)] */
  readonly backends: [string, string, number, number, number, number][];
  readonly connections: Record<ListenerName, number>;
  readonly websockets: number;
  readonly websocketsTotal: number;
  readonly tlsHandshakeErrors: number;
  /** Mirror copies by outcome: [answered, failed, skipped]. */
  readonly mirrors: [number, number, number];
}

export class WorkerMetrics {
  /** Indexed by status code. */
  readonly unrouted = new Float64Array(600);
  readonly connections: Record<ListenerName, number> = { http: 0, https: 0 };
  websockets = 0;
  websocketsTotal = 0;
  tlsHandshakeErrors = 0;
  mirrorsAnswered = 0;
  mirrorsFailed = 0;
  mirrorsSkipped = 0;

  /** Counts a request refused before routing. */
  countUnrouted(status: number): void {
    if (status >= 100 && status < 600) this.unrouted[status]++;
  }

  snapshot(table: RouteTable): WorkerMetricsSnapshot {
    const services: ServiceMetricsSnapshot[] = [];
    const backends: WorkerMetricsSnapshot['backends'] = [];
    const now = Date.now();
    for (const pool of table.pools()) {
      const snapshot = pool.metrics.snapshot(pool.name);
      if (snapshot !== null) services.push(snapshot);
      for (const { backend } of pool.entries) {
        const ejected = backend.isEjected(now);
        backends.push([pool.name, backend.address, ejected ? 1 : 0, backend.ejectionsTotal, backend.active, ejected ? backend.ejectedUntil : 0]);
      }
    }
    const unrouted: [number, number][] = [];
    for (let status = 0; status < this.unrouted.length; status++) {
      if (this.unrouted[status] > 0) unrouted.push([status, this.unrouted[status]]);
    }
    return {
      services,
      unrouted,
      backends,
      connections: { ...this.connections },
      websockets: this.websockets,
      websocketsTotal: this.websocketsTotal,
      tlsHandshakeErrors: this.tlsHandshakeErrors,
      mirrors: [this.mirrorsAnswered, this.mirrorsFailed, this.mirrorsSkipped],
    };
  }
}
