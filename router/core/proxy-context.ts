// What every request handler of one listener shares: the table, the logs, the
// listener's scheme, the upstream timeouts and the in-flight count the drain
// waits for. One per listener per worker.
import type { Logger } from '../../common/logger.ts';
import type { RouteTable } from '../table/route-table.ts';
import type { WorkerMetrics } from '../metrics/worker-metrics.ts';

export interface ProxyContext {
  readonly table: RouteTable;
  /** Access log, or null when disabled. */
  readonly accessLog: Logger | null;
  readonly log: Logger;
  /** The listener's scheme: X-Forwarded-Proto, and whether redirects or HSTS apply. */
  readonly proto: 'http' | 'https';
  /** The port in the Location of an HTTP→HTTPS redirect (left out when 443). */
  readonly httpsPort: number;
  readonly metrics: WorkerMetrics;
  /** Upstream response-header timeout and idle (between body chunks) timeout, ms. */
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  /** Most backends one request may try. */
  readonly maxAttempts: number;
  /** Requests in flight in this process (for draining). */
  inFlight: number;
}
