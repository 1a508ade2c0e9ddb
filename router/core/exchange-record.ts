// What an ended request records, whichever protocol served it: the service's
// counters and latency histogram, and the access-log line (its fields are the
// README's, plus the client's address, protocol, Referer and User-Agent, which the
// common and combined formats show: access-log.ts). Positional arguments: this
// runs once per request, and allocates nothing unless the access log is on.
import type { Backend } from '../table/backend.ts';
import type { RequestHead } from './forward-headers.ts';
import type { ProxyContext } from './proxy-context.ts';
import type { Route } from '../table/route-table.ts';
import type { ServicePool } from '../table/service-pool.ts';

/**
 * A proxied request (any status, also 502/503/504 and 499), from its head (`started`, performance.now())
 * to its end, against the service that served it (with a split, the one chosen).
 */
export function recordProxied(ctx: ProxyContext, pool: ServicePool, backend: Backend | null, started: number, method: string | undefined, host: string, path: string, status: number, bytes: number, attempts: number, head: RequestHead, error: string | undefined): void {
  const ms = performance.now() - started;
  pool.metrics.record(backend, status, ms / 1000);
  ctx.accessLog?.info({ method, host, path, status, bytes, ms: roundMs(ms), backend: backend?.address, service: pool.name, attempts, id: head.requestId, error, remote: head.remote, protocol: head.protocol, referer: head.referer, agent: head.agent });
}

/** A 308 to HTTPS (the route's httpsRedirect). */
export function recordRedirect(ctx: ProxyContext, route: Route, started: number, method: string | undefined, host: string, path: string, head: RequestHead, location: string): void {
  const ms = performance.now() - started;
  route.pool.metrics.record(null, 308, ms / 1000);
  ctx.accessLog?.info({ method, host, path, status: 308, bytes: 0, ms: roundMs(ms), service: route.pool.name, id: head.requestId, location, remote: head.remote, protocol: head.protocol, referer: head.referer, agent: head.agent });
}

/** A request no route took (404, or a 400/501/505 refusal after its head parsed). */
export function recordUnrouted(ctx: ProxyContext, started: number, method: string | undefined, host: string, path: string, status: number, head: RequestHead, reason: string): void {
  ctx.metrics.countUnrouted(status);
  ctx.accessLog?.info({ method, host, path, status, bytes: 0, ms: roundMs(performance.now() - started), id: head.requestId, error: reason, remote: head.remote, protocol: head.protocol, referer: head.referer, agent: head.agent });
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A route middleware's own answer (401, 403, 413, 429, a CORS preflight's 204). */
export function recordAnswer(ctx: ProxyContext, route: Route, started: number, method: string | undefined, host: string, path: string, head: RequestHead, status: number, reason: string): void {
  const ms = performance.now() - started;
  route.pool.metrics.record(null, status, ms / 1000);
  ctx.accessLog?.info({ method, host, path, status, bytes: 0, ms: roundMs(ms), service: route.pool.name, id: head.requestId, error: reason, remote: head.remote, protocol: head.protocol, referer: head.referer, agent: head.agent });
}
