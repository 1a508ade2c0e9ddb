// A copy of a request for a route's mirror service: the same upstream request
// head the real request gets (method, normalised path, forwarded headers), plus
// `connection: close`, on a connection of its own; the answer is read and
// dropped. It never delays the real request (started after it, nothing waits
// on it) and never touches the real backends' health or pools. Only requests
// without a body are copied (a body is streamed once, to the real backend).
// At most MAX_IN_FLIGHT copies per worker: beyond that, copies are skipped.
import { connect } from 'node:net';
import type { ProxyContext } from './proxy-context.ts';
import type { Route } from '../table/route-table.ts';
import type { TrafficMirror } from '../table/traffic-mirror.ts';

const MAX_IN_FLIGHT = 64;
let inFlight = 0;

export function mirrorRequest(ctx: ProxyContext, route: Route, mirror: TrafficMirror, upstreamHead: string): void {
  const backend = inFlight >= MAX_IN_FLIGHT ? null : route.select(mirror.pool, Date.now(), null);
  if (backend === null) {
    ctx.metrics.mirrorsSkipped++;
    return;
  }
  inFlight++;
  let answered = false;
  const socket = connect({ host: backend.host, port: backend.port, noDelay: true });
  socket.setTimeout(route.responseTimeout ?? ctx.responseTimeout, () => socket.destroy());
  socket.once('connect', () => socket.end(`${upstreamHead.slice(0, -2)}connection: close\r\n\r\n`, 'latin1'));
  socket.on('data', () => {
    answered = true;
  });
  socket.on('error', () => {});
  socket.once('close', () => {
    inFlight--;
    if (answered) ctx.metrics.mirrorsAnswered++;
    else ctx.metrics.mirrorsFailed++;
  });
}
