// What happens to a request once its head parsed, decided once for every
// protocol (HTTP/1.1, HTTP/2, WebSocket upgrades): the header
// rules (forward-headers.ts), the target and its normalised path
// (request-target.ts), the route, and whether the router answers itself
// (a refusal, 404, the HTTPS redirect, an ACME HTTP-01 challenge, a route
// middleware's answer: 401/403/413/429, a CORS preflight) or a backend does,
// at which path and with which headers (the route's middlewares, phase 1).
// A password check is the one decision that is not synchronous (AWAIT).
// Protocol adapters only parse, frame and write what this decides.
// Never: write to a socket, or look at a backend.
import { acmeChallengeAnswer } from '../acme/challenge-responder.ts';
import type { LocalAnswer } from '../middleware/local-answer.ts';
import type { ShapedRequest } from '../middleware/route-middlewares.ts';
import { readRequestHead, type RequestHead } from './forward-headers.ts';
import type { ProxyContext } from './proxy-context.ts';
import { parseRequestTarget } from './request-target.ts';
import type { Route } from '../table/route-table.ts';

export const REFUSE = 0;
export const REDIRECT = 1;
export const PROXY = 2;
/** The router answers itself (`answer`): an ACME HTTP-01 key authorization (route null), or a route middleware's answer. */
export const ANSWER = 3;
/** A middleware check runs (a password): `settle` resolves to the decision, never to AWAIT again. */
export const AWAIT = 4;

interface Decided {
  readonly head: RequestHead;
  /** Lowercase host without port (from the target's authority or Host). */
  readonly host: string;
  /** The normalised path and query (the raw target when it was refused before normalising). */
  readonly path: string;
}

export type RequestDecision =
  | Decided & { readonly action: typeof REFUSE; readonly status: 400 | 404 | 501 | 505; readonly reason: string }
  | Decided & { readonly action: typeof REDIRECT; readonly route: Route; readonly location: string }
  | Decided & {
    readonly action: typeof PROXY;
    readonly route: Route;
    /** The path (and query) for the backend: `path`, or the middlewares' rewrite of it. */
    readonly upstreamPath: string;
    /** The request's part of the route's middlewares (response phases), or null without middlewares. */
    readonly shaped: ShapedRequest | null;
  }
  | Decided & { readonly action: typeof ANSWER; readonly route: Route | null; readonly answer: LocalAnswer }
  | Decided & { readonly action: typeof AWAIT; readonly settle: Promise<SettledDecision> };

export type SettledDecision = Exclude<RequestDecision, { readonly action: typeof AWAIT }>;

/**
 * `target`: the request-target as sent (HTTP/2: `:path`); `raw`: the header list, flat; `http2Body`:
 * null for HTTP/1.x, else whether an HTTP/2 body follows.
 */
export function routeRequest(ctx: ProxyContext, method: string, target: string, raw: readonly string[], major: number, minor: number, remote: string, http2Body: boolean | null): RequestDecision {
  const parsed = parseRequestTarget(target);
  const authority = 'error' in parsed ? null : parsed.authority;
  const head = readRequestHead(raw, major, minor, remote, ctx.proto, http2Body, authority);
  const host = head.host;
  if (head.reject !== null) return { action: REFUSE, head, host, path: target, status: head.reject.status, reason: head.reject.reason };
  if ('error' in parsed) return { action: REFUSE, head, host, path: target, status: 400, reason: parsed.error };
  const path = parsed.path;
  // ACME HTTP-01 on the HTTP listener, before any route or redirect (a host with httpsRedirect validates too).
  if (ctx.proto === 'http') {
    const challenge = acmeChallengeAnswer(ctx.table, method, path);
    if (challenge !== null) return { action: ANSWER, head, host, path, route: null, answer: { status: 200, fields: ['cache-control', 'no-store'], body: challenge, reason: 'ACME HTTP-01' } };
  }
  const route = ctx.table.resolve(host, path);
  if (route === null) return { action: REFUSE, head, host, path, status: 404, reason: 'no route' };
  if (route.httpsRedirect && ctx.proto === 'http') return { action: REDIRECT, head, host, path, route, location: httpsLocation(ctx, host, path) };
  const middlewares = route.middlewares;
  if (middlewares === null) return { action: PROXY, head, host, path, route, upstreamPath: path, shaped: null };
  const checked = middlewares.check(method, head);
  if (checked === null) return proxy(method, head, host, path, route);
  if (!(checked instanceof Promise)) return { action: ANSWER, head, host, path, route, answer: checked };
  const settle = checked.then((answer): SettledDecision => (answer === null ? proxy(method, head, host, path, route) : { action: ANSWER, head, host, path, route, answer }));
  return { action: AWAIT, head, host, path, settle };
}

function proxy(method: string, head: RequestHead, host: string, path: string, route: Route): SettledDecision {
  const shaped = route.middlewares!.shape(method, head, path);
  return { action: PROXY, head, host, path, route, upstreamPath: shaped.upstreamPath, shaped };
}

/** The Location of an HTTP→HTTPS redirect for host (lowercase, no port) and path. */
export function httpsLocation(ctx: ProxyContext, host: string, path: string): string {
  return ctx.httpsPort === 443 ? `https://${host}${path}` : `https://${host}:${ctx.httpsPort}${path}`;
}
