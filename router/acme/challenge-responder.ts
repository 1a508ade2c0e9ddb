// Answers ACME HTTP-01 validation (`GET /.well-known/acme-challenge/<token>`) on
// the HTTP listener from the worker's table, before any route rule or redirect,
// so that whichever router the load balancer picks answers for an order any
// router placed, and a host with httpsRedirect still validates. A token the
// cluster did not issue is not answered here: the request goes on to the routes
// (a backend may serve its own challenges, as before).
//
// Each engine calls acmeChallengeAnswer once in its request prelude, then writes
// the answer with the function for its engine below.
import type { ProxyContext } from '../proxy-exchange.ts';
import type { RouteTable } from '../route-table.ts';

const CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** The key authorization to answer for this request, or null when it is not a known challenge. */
export function acmeChallengeAnswer(table: RouteTable, method: string | undefined, path: string): string | null {
  if (table.challenges.size === 0 || !path.startsWith(CHALLENGE_PATH) || (method !== 'GET' && method !== 'HEAD')) return null;
  const query = path.indexOf('?', CHALLENGE_PATH.length);
  return table.challenges.get(path.slice(CHALLENGE_PATH.length, query < 0 ? path.length : query)) ?? null;
}

/** The raw engine's whole response (router/http1/connection.ts writes it as latin1; the answer is ASCII). */
export function rawChallengeResponse(keyAuthorization: string, method: string, requestId: string, close: boolean, minor: number): string {
  const connection = close ? 'connection: close\r\n' : minor === 0 ? 'connection: keep-alive\r\n' : '';
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${keyAuthorization.length}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\n${connection}\r\n${method === 'HEAD' ? '' : keyAuthorization}`;
}

/** The node engine's response headers (router/proxy-exchange.ts writes them with the answer). */
export function challengeResponseHeaders(keyAuthorization: string, requestId: string): string[] {
  return ['content-type', 'text/plain', 'content-length', String(keyAuthorization.length), 'cache-control', 'no-store', 'x-request-id', requestId];
}

/**
 * An answered challenge is logged on the worker's log, access log or not: validations are rare,
 * and "which node did the directory reach" is what an operator asks when an order fails.
 */
export function recordChallenge(ctx: ProxyContext, started: number, method: string | undefined, host: string, path: string, requestId: string): void {
  ctx.log.info({ method, host, path, status: 200, ms: Math.round((performance.now() - started) * 1000) / 1000, id: requestId, acme: 'http-01' }, 'ACME challenge answered');
}
