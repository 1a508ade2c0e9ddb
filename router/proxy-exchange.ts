// The hot path: one client request proxied to one upstream attempt at a time.
// A ProxyExchange is the undici dispatch handler itself (one object per
// request), streams both bodies with backpressure, fails over to the next
// backend when nothing was sent, retries an idempotent request once, and maps
// what cannot be retried to 502/503/504 through upstream-errors.ts.
// HTTP/1.1 (node:http) and HTTP/2 (node:http2's compatibility API) requests take
// the same path; upstreams are always HTTP/1.1.
//
// Never: parse JSON, walk the table, or allocate per header more than once.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as http2Constants, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Logger } from '../common/logger.ts';
import { acmeChallengeAnswer, challengeResponseHeaders, recordChallenge } from './acme/challenge-responder.ts';
import type { Backend } from './backend.ts';
import { recordProxied, recordRedirect, recordUnrouted } from './exchange-record.ts';
import { readRequestHead, responseHeaders, normalizeHost, isValidHost, type RequestHead } from './forward-headers.ts';
import type { Route, RouteTable } from './route-table.ts';
import { classifyUpstreamError, statusText } from './upstream-errors.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export type ClientRequest = IncomingMessage | Http2ServerRequest;
export type ClientResponse = ServerResponse | Http2ServerResponse;

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

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** The backend closed the connection under a sent request: on a reused keep-alive connection, typically its idle timeout racing the request. */
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const MAX_ATTEMPTS_CAP = 5;

/** Set on a client socket once a response on it closes the connection (writeError). */
const closing = Symbol('tug.closing');
type ClientSocket = Socket & { [closing]?: true };

export function handleRequest(ctx: ProxyContext, req: ClientRequest, res: ClientResponse): void {
  // HTTP/2: whether a body follows the headers; null for HTTP/1.x.
  const http2Body = req.httpVersionMajor === 2 && 'stream' in req ? !req.stream.endAfterHeaders : null;
  // Pipelined behind a response that closes the connection (e.g. a refused request): it will never
  // be answered, so it must not reach a backend either.
  if (http2Body === null && (req.socket as ClientSocket)[closing] === true) return;
  const started = performance.now();
  const head = readRequestHead(req.rawHeaders, req.httpVersionMajor, req.httpVersionMinor, req.socket.remoteAddress ?? '', ctx.proto, http2Body);
  let path = req.url ?? '/';
  let host = head.host;
  if (head.reject !== null) {
    sendError(ctx, req, res, head, head.reject.status, head.reject.reason, started, host, path);
    return;
  }
  if (path.charCodeAt(0) !== 47 /* / */) {
    const target = requestTarget(path, host);
    if (target === null) {
      sendError(ctx, req, res, head, 400, 'invalid request target', started, host, path);
      return;
    }
    host = target.host;
    path = target.path;
  }
  // ACME HTTP-01 (router/acme/challenge-responder.ts): before any route or redirect.
  const challenge = ctx.proto === 'http' ? acmeChallengeAnswer(ctx.table, req.method, path) : null;
  if (challenge !== null) {
    const headers = challengeResponseHeaders(challenge, head.requestId);
    closeAfterUnreadBody(req, head, headers, false);
    (res as ServerResponse).writeHead(200, headers).end(req.method === 'HEAD' ? undefined : challenge);
    recordChallenge(ctx, started, req.method, host, path, head.requestId);
    return;
  }
  const route = ctx.table.resolve(host, path);
  if (route === null) {
    sendError(ctx, req, res, head, 404, 'no route', started, host, path);
    return;
  }
  if (route.httpsRedirect && ctx.proto === 'http') {
    sendRedirect(ctx, req, res, head, route, host, path, started);
    return;
  }
  new ProxyExchange(ctx, req, res, head, route, host, path, started).start();
}

/**
 * The host and origin-form path a request is for: the target's own authority for the
 * absolute form (RFC 9112 §3.2.2: it wins over Host), else the Host. Null when invalid.
 */
export function requestTarget(url: string, host: string): { host: string; path: string } | null {
  if (url.charCodeAt(0) === 47 /* / */) return { host, path: url };
  const match = /^https?:\/\/([^/?#]+)([^#]*)$/i.exec(url);
  if (match === null || !isValidHost(match[1])) return null;
  return { host: normalizeHost(match[1]), path: match[2] === '' ? '/' : match[2].charCodeAt(0) === 63 ? `/${match[2]}` : match[2] };
}

/** The Location of an HTTP→HTTPS redirect for host (lowercase, no port) and path. */
export function httpsLocation(ctx: ProxyContext, host: string, path: string): string {
  return ctx.httpsPort === 443 ? `https://${host}${path}` : `https://${host}:${ctx.httpsPort}${path}`;
}

class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly #ctx: ProxyContext;
  readonly #req: ClientRequest;
  /** node:http's or node:http2's response; typed as the first, whose methods used here both have. */
  readonly #res: ServerResponse;
  readonly #head: RequestHead;
  readonly #route: Route;
  readonly #host: string;
  readonly #path: string;
  readonly #started: number;
  #backend: Backend | null = null;
  #tried: Backend[] | null = null;
  #controller: Dispatcher.DispatchController | null = null;
  /** The current attempt reached a connection (request bytes may have left). */
  #sent = false;
  #retriedAfterSend = false;
  #attempts = 0;
  #bytes = 0;
  #status = 0;
  #done = false;
  #clientGone = false;
  /** Strict-Transport-Security for this response (HTTPS listener, route with hsts), or null. */
  readonly #hsts: string | null;

  constructor(ctx: ProxyContext, req: ClientRequest, res: ClientResponse, head: RequestHead, route: Route, host: string, path: string, started: number) {
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res as ServerResponse;
    this.#head = head;
    this.#route = route;
    this.#host = host;
    this.#path = path;
    this.#started = started;
    this.#hsts = ctx.proto === 'https' ? route.hsts : null;
  }

  start(): void {
    this.#ctx.inFlight++;
    this.#res.once('close', () => {
      if (!this.#done) {
        this.#clientGone = true;
        this.#controller?.abort(new Error('client closed the connection'));
      }
    });
    this.#dispatch();
  }

  /** `fallback`: the backend to retry on (its pool drops the closed connection) when the balancer has no other one left. */
  #dispatch(fallback: Backend | null = null): void {
    const route = this.#route;
    const backend = route.select(route.pool, Date.now(), this.#tried) ?? fallback;
    if (backend === null) {
      this.#fail(503, this.#attempts === 0 ? 'no live backend' : 'no backend left to try');
      return;
    }
    this.#backend = backend;
    this.#sent = false;
    this.#controller = null;
    this.#attempts++;
    backend.active++;
    try {
      backend.dispatcher.dispatch({
        path: this.#path,
        method: this.#req.method as Dispatcher.HttpMethod,
        headers: this.#head.headers,
        body: this.#head.hasBody ? this.#req : null,
        headersTimeout: route.responseTimeout ?? this.#ctx.responseTimeout,
        bodyTimeout: route.idleTimeout ?? this.#ctx.idleTimeout,
      }, this);
    } catch (err) {
      backend.active--;
      this.#ctx.log.warn({ err: (err as Error).message, backend: backend.address }, 'upstream dispatch refused the request');
      this.#fail(502, 'invalid upstream request');
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    this.#sent = true;
    if (this.#clientGone) controller.abort(new Error('client closed the connection'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = statusCode;
    this.#res.writeHead(statusCode, responseHeaders(headers, this.#head.requestId, this.#hsts));
    this.#controller = controller;
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    const backend = this.#backend!;
    backend.active--;
    backend.recordSuccess();
    this.#done = true;
    this.#res.end();
    this.#finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    const backend = this.#backend!;
    backend.active--;
    if (this.#clientGone) {
      this.#done = true;
      this.#status = this.#status || 499;
      this.#finish(backend);
      return;
    }
    const failure = classifyUpstreamError(err);
    // A stale keep-alive close counts too: a backend that resets every request must be ejected,
    // and a healthy one's occasional stale close is followed by successes, which clear the count.
    if (failure.backendFault && backend.recordFailure(Date.now())) {
      this.#ctx.log.warn({ backend: backend.address, service: this.#route.pool.name, until: new Date(backend.ejectedUntil).toISOString(), err: failure.reason }, 'backend ejected');
    }
    if (this.#res.headersSent) {
      // Too late for another status: cut the client off so it sees a truncated response, not a complete one.
      this.#done = true;
      if (this.#head.http2) {
        // An HTTP/2 stream closed without an error code would look complete: reset it with one.
        (this.#res as unknown as Http2ServerResponse).stream.close(http2Constants.NGHTTP2_INTERNAL_ERROR);
      } else {
        this.#res.destroy();
      }
      this.#finish(backend, failure.reason);
      return;
    }
    const closedUnderRequest = this.#sent && CLOSED_UNDER_REQUEST.has((err as NodeJS.ErrnoException).code ?? '');
    if (this.#canRetry(closedUnderRequest)) {
      (this.#tried ??= []).push(backend);
      if (this.#sent) this.#retriedAfterSend = true;
      this.#dispatch(closedUnderRequest ? backend : null);
      return;
    }
    this.#fail(failure.status, failure.reason);
  }

  #canRetry(closedUnderRequest: boolean): boolean {
    const req = this.#req;
    if (this.#head.hasBody && (req.readableDidRead || req.destroyed)) return false;
    if (this.#attempts >= Math.min(this.#ctx.maxAttempts, MAX_ATTEMPTS_CAP)) return false;
    // Nothing left the proxy: any method may go to the next backend.
    if (!this.#sent) return this.#attempts < this.#route.pool.size;
    if (this.#retriedAfterSend || !IDEMPOTENT.has(req.method ?? '')) return false;
    // Sent: idempotent requests get one more attempt, on another backend, or on
    // the same one (on another connection) when it closed the connection under
    // the request (nginx likewise retries a failed cached keep-alive connection).
    return closedUnderRequest || this.#attempts < this.#route.pool.size;
  }

  #fail(status: number, reason: string): void {
    this.#done = true;
    this.#status = status;
    writeError(this.#req, this.#res, this.#head, status, this.#hsts);
    this.#finish(this.#backend, reason);
  }

  #finish(backend: Backend | null = this.#backend, error?: string): void {
    this.#ctx.inFlight--;
    recordProxied(this.#ctx, this.#route, backend, this.#started, this.#req.method, this.#host, this.#path, this.#status, this.#bytes, this.#attempts, this.#head.requestId, error);
  }
}

function sendError(ctx: ProxyContext, req: ClientRequest, res: ClientResponse, head: RequestHead, status: number, reason: string, started: number, host: string, path: string): void {
  writeError(req, res, head, status, null);
  recordUnrouted(ctx, started, req.method, host, path, status, head.requestId, reason);
}

/** A 308 to the same URL on HTTPS (the method and body are kept by the client, unlike 301). */
function sendRedirect(ctx: ProxyContext, req: ClientRequest, response: ClientResponse, head: RequestHead, route: Route, host: string, path: string, started: number): void {
  const location = httpsLocation(ctx, host, path);
  const body = `308 Permanent Redirect: ${location}\n`;
  const headers = ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', String(Buffer.byteLength(body)), 'x-request-id', head.requestId];
  closeAfterUnreadBody(req, head, headers, false);
  const res = response as ServerResponse;
  res.writeHead(308, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  recordRedirect(ctx, route, started, req.method, host, path, head.requestId, location);
}

function writeError(req: ClientRequest, response: ClientResponse, head: RequestHead, status: number, hsts: string | null): void {
  const res = response as ServerResponse;
  if (res.headersSent || res.destroyed) return;
  const body = `${status} ${statusText[status] ?? 'Error'}\n`;
  const headers = [
    'content-type', 'text/plain; charset=utf-8',
    'content-length', String(Buffer.byteLength(body)),
    'cache-control', 'no-store',
    'x-request-id', head.requestId,
  ];
  if (hsts !== null) headers.push('strict-transport-security', hsts);
  closeAfterUnreadBody(req, head, headers, status === 400 || status === 501 || status === 505);
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * HTTP/1.x: an unread request body would otherwise be read to its end just to keep the connection,
 * and a malformed request leaves the connection in an unknown state: answer with Connection: close.
 * HTTP/2 has no such header (the stream ends alone; the connection is shared).
 */
function closeAfterUnreadBody(req: ClientRequest, head: RequestHead, headers: string[], malformed: boolean): void {
  if (head.http2) return;
  if ((head.hasBody && !req.complete) || malformed) {
    headers.push('connection', 'close');
    (req.socket as ClientSocket)[closing] = true;
  }
}
