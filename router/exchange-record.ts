// What an ended request records, whichever engine served it: the service's
// counters and latency histogram, and the access-log line (its fields are the
// README's). Positional arguments: this runs once per request, and allocates
// nothing unless the access log is on. `client` (the remote address, protocol,
// Referer and User-Agent) is what the common and combined access-log formats add
// to these fields (access-log.ts); an engine that does not pass it gets `-` there.
import type { AccessClient } from './access-log.ts';
import type { Backend } from './backend.ts';
import type { ProxyContext } from './proxy-exchange.ts';
import type { Route } from './route-table.ts';

/** A proxied request (any status, also 502/503/504 and 499), from its head (`started`, performance.now()) to its end. */
export function recordProxied(ctx: ProxyContext, route: Route, backend: Backend | null, started: number, method: string | undefined, host: string, path: string, status: number, bytes: number, attempts: number, requestId: string, error: string | undefined, client?: AccessClient): void {
  const ms = performance.now() - started;
  route.pool.metrics.record(backend, status, ms / 1000);
  ctx.accessLog?.info({ method, host, path, status, bytes, ms: roundMs(ms), backend: backend?.address, service: route.pool.name, attempts, id: requestId, error, ...client });
}

/** A 308 to HTTPS (the route's httpsRedirect). */
export function recordRedirect(ctx: ProxyContext, route: Route, started: number, method: string | undefined, host: string, path: string, requestId: string, location: string, client?: AccessClient): void {
  const ms = performance.now() - started;
  route.pool.metrics.record(null, 308, ms / 1000);
  ctx.accessLog?.info({ method, host, path, status: 308, bytes: 0, ms: roundMs(ms), service: route.pool.name, id: requestId, location, ...client });
}

/** A request no route took (404, or a 400/501/505 refusal after its head parsed). */
export function recordUnrouted(ctx: ProxyContext, started: number, method: string | undefined, host: string, path: string, status: number, requestId: string, reason: string, client?: AccessClient): void {
  ctx.metrics.countUnrouted(status);
  ctx.accessLog?.info({ method, host, path, status, bytes: 0, ms: roundMs(performance.now() - started), id: requestId, error: reason, ...client });
}

function roundMs(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
