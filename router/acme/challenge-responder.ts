// Answers ACME HTTP-01 validation (`GET /.well-known/acme-challenge/<token>`) on
// the HTTP listener from the worker's table, before any route rule or redirect,
// so that whichever router the load balancer picks answers for an order any
// router placed, and a host with httpsRedirect still validates. A token the
// cluster did not issue is not answered here: the request goes on to the routes
// (a backend may serve its own challenges, as before).
//
// The request prelude (route-request.ts) asks acmeChallengeAnswer once for every
// protocol; each adapter writes the answer as it writes its other local replies.
import type { ProxyContext } from '../core/proxy-context.ts';
import type { RouteTable } from '../table/route-table.ts';

const CHALLENGE_PATH = '/.well-known/acme-challenge/';

/** The key authorization to answer for this request, or null when it is not a known challenge. */
export function acmeChallengeAnswer(table: RouteTable, method: string | undefined, path: string): string | null {
  if (table.challenges.size === 0 || !path.startsWith(CHALLENGE_PATH) || (method !== 'GET' && method !== 'HEAD')) return null;
  const query = path.indexOf('?', CHALLENGE_PATH.length);
  return table.challenges.get(path.slice(CHALLENGE_PATH.length, query < 0 ? path.length : query)) ?? null;
}

/**
 * An answered challenge is logged on the worker's log, access log or not: validations are rare,
 * and "which node did the directory reach" is what an operator asks when an order fails.
 */
export function recordChallenge(ctx: ProxyContext, started: number, method: string | undefined, host: string, path: string, requestId: string): void {
  ctx.log.info({ method, host, path, status: 200, ms: Math.round((performance.now() - started) * 1000) / 1000, id: requestId, acme: 'http-01' }, 'ACME challenge answered');
}
