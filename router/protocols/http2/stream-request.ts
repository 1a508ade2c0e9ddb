// One HTTP/2 stream: the HTTP/2 adapter of the request core, on node:http2's
// core stream API (no compatibility request/response objects). The request goes
// through the same prelude (route-request.ts) and the same Exchange over the
// same raw upstream pools as HTTP/1.1; this file only frames: a request body
// without a length goes upstream chunked, the response head becomes a HEADERS
// frame, a chunked upstream body is handed over decoded, and a response that
// cannot complete resets the stream with INTERNAL_ERROR.
// Never: touch the session (other streams share it) beyond this stream.
import type { Socket } from 'node:net';
import { constants, type ServerHttp2Stream } from 'node:http2';
import type { Backend } from '../../table/backend.ts';
import type { ClientSide } from '../../core/client-side.ts';
import { Exchange, upstreamRequestHead } from '../../core/exchange.ts';
import { recordAnswer, recordRedirect, recordUnrouted } from '../../core/exchange-record.ts';
import { addFields, type ResponseEdits } from '../../core/response-edits.ts';
import type { LocalAnswer } from '../../middleware/local-answer.ts';
import { LENGTH, NO_BODY, type ParsedResponse } from '../http1/response-head.ts';
import type { UpstreamPool } from '../../core/upstream-pool.ts';
import type { ProxyContext } from '../../core/proxy-context.ts';
import { ANSWER, AWAIT, PROXY, REDIRECT, routeRequest, type SettledDecision } from '../../core/route-request.ts';
import { recordChallenge } from '../../acme/challenge-responder.ts';
import { statusText } from '../../core/upstream-errors.ts';

/** What a stream needs from its listener. */
export interface StreamServerSide {
  readonly ctx: ProxyContext;
  poolFor(backend: Backend): UpstreamPool;
  /** Exchanges whose deadlines the listener's sweep checks. */
  readonly exchanges: Set<Exchange>;
}

const CRLF = Buffer.from('\r\n');
/** Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2); the response head parser drops the others. */
const CONNECTION_SPECIFIC = new Set(['http2-settings', 'host']);
const LAST_CHUNK = '0\r\n\r\n';

/** Serves one HTTP/2 stream (node:http2's 'stream' event). */
export function serveStream(server: StreamServerSide, stream: ServerHttp2Stream, rawHeaders: string[]): void {
  const ctx = server.ctx;
  const started = performance.now();
  let method = '';
  let path = '';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i];
    if (name === ':method') method = rawHeaders[i + 1];
    else if (name === ':path') path = rawHeaders[i + 1];
  }
  const hasBody = !stream.endAfterHeaders;
  const decision = routeRequest(ctx, method, path, rawHeaders, 2, 0, stream.session?.socket?.remoteAddress ?? '', hasBody);
  if (decision.action !== AWAIT) {
    act(server, stream, method, hasBody, decision, started);
    return;
  }
  // A password check runs: the body stays in the stream (flow control holds the client) until it settles.
  if (hasBody) stream.pause();
  stream.on('error', () => {});
  void decision.settle.then((settled) => {
    if (!stream.destroyed) act(server, stream, method, hasBody, settled, started);
  });
}

function act(server: StreamServerSide, stream: ServerHttp2Stream, method: string, hasBody: boolean, decision: SettledDecision, started: number): void {
  const ctx = server.ctx;
  const { head, host } = decision;
  if (decision.action !== PROXY) {
    if (decision.action === ANSWER) {
      writeAnswer(stream, method, head.requestId, decision.answer);
      if (decision.route === null) recordChallenge(ctx, started, method, host, decision.path, head.requestId);
      else recordAnswer(ctx, decision.route, started, method, host, decision.path, head, decision.answer.status, decision.answer.reason);
    } else if (decision.action === REDIRECT) {
      answer(stream, method, 308, head.requestId, null, `308 Permanent Redirect: ${decision.location}\n`, decision.location);
      recordRedirect(ctx, decision.route, started, method, host, decision.path, head, decision.location);
    } else {
      answer(stream, method, decision.status, head.requestId, null);
      recordUnrouted(ctx, started, method, host, decision.path, decision.status, head, decision.reason);
    }
    return;
  }
  // A body without Content-Length (HTTP/2 needs none) goes upstream chunked.
  const chunked = hasBody && !hasContentLength(head.headers);
  const request = new StreamRequest(server, stream, hasBody, chunked, decision.shaped === null ? -1 : decision.shaped.maxBodySize);
  const exchange = new Exchange(request, ctx, method, head, decision.route, host, decision.path, started, upstreamRequestHead(method, decision.upstreamPath, head.headers, chunked), decision.shaped);
  request.start(exchange);
}

function hasContentLength(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-length') return true;
  return false;
}

/** The router's own answer on a stream: a one-line text body (none for HEAD). */
function answer(stream: ServerHttp2Stream, method: string, status: number, requestId: string, hsts: string | null, text = `${status} ${statusText[status] ?? 'Error'}\n`, location: string | null = null): void {
  if (stream.destroyed || stream.headersSent) return;
  const headers: Record<string, string | number> = {
    ':status': status,
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-request-id': requestId,
  };
  if (location === null) headers['cache-control'] = 'no-store';
  else headers.location = location;
  if (hsts !== null) headers['strict-transport-security'] = hsts;
  const bodiless = method === 'HEAD';
  stream.respond(headers, { endStream: bodiless });
  if (!bodiless) stream.end(text);
}

/** A route middleware's or ACME's answer on a stream. */
function writeAnswer(stream: ServerHttp2Stream, method: string, requestId: string, local: LocalAnswer): void {
  if (stream.destroyed || stream.headersSent) return;
  const headers: Record<string, string | string[] | number> = { ':status': local.status, 'x-request-id': requestId };
  if (local.body !== '') {
    headers['content-type'] = 'text/plain; charset=utf-8';
    headers['content-length'] = Buffer.byteLength(local.body);
  }
  addFields(headers, local.fields);
  const bodiless = method === 'HEAD' || local.body === '';
  stream.respond(headers, { endStream: bodiless });
  if (!bodiless) stream.end(local.body);
}

class StreamRequest implements ClientSide {
  readonly #server: StreamServerSide;
  readonly #stream: ServerHttp2Stream;
  readonly #chunked: boolean;
  #exchange: Exchange | null = null;
  #upstream: Socket | null = null;
  #ended = false;
  /** Request body bytes read so far, and the route's maxBodySize (-1: none). */
  #bodyBytes = 0;
  readonly #bodyLimit: number;
  bodyComplete: boolean;
  bodyConsumed = false;

  constructor(server: StreamServerSide, stream: ServerHttp2Stream, hasBody: boolean, chunked: boolean, bodyLimit: number) {
    this.#server = server;
    this.#bodyLimit = bodyLimit;
    this.#stream = stream;
    this.#chunked = chunked;
    this.bodyComplete = !hasBody;
  }

  start(exchange: Exchange): void {
    this.#exchange = exchange;
    const stream = this.#stream;
    // The body stays in the stream (HTTP/2 flow control holds the client) until an upstream is ready.
    if (!this.bodyComplete) stream.pause();
    stream.on('drain', () => exchange.onClientDrain());
    stream.on('error', () => {});
    stream.once('close', () => {
      this.#server.exchanges.delete(exchange);
      exchange.onClientGone();
    });
    this.#server.exchanges.add(exchange);
    exchange.start();
  }

  poolFor(backend: Backend): UpstreamPool {
    return this.#server.poolFor(backend);
  }

  get closed(): boolean {
    return this.#stream.destroyed;
  }

  get writePending(): boolean {
    return this.#stream.writableLength > 0;
  }

  sendBody(upstream: Socket): void {
    const first = this.#upstream === null;
    this.#upstream = upstream;
    if (first) {
      this.#stream.on('data', (chunk: Buffer) => this.#forward(chunk));
      this.#stream.once('end', () => this.#bodyEnd());
    }
    this.#stream.resume();
  }

  #forward(chunk: Buffer): void {
    const upstream = this.#upstream;
    if (upstream === null || upstream.destroyed) return;
    if (this.#bodyLimit >= 0) {
      this.#bodyBytes += chunk.length;
      if (this.#bodyBytes > this.#bodyLimit) {
        this.#exchange!.bodyTooLarge();
        return;
      }
    }
    this.bodyConsumed = true;
    let ok: boolean;
    if (this.#chunked) {
      upstream.cork();
      upstream.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      upstream.write(chunk);
      ok = upstream.write(CRLF);
      upstream.uncork();
    } else {
      ok = upstream.write(chunk);
    }
    if (!ok) this.#stream.pause();
  }

  #bodyEnd(): void {
    const upstream = this.#upstream;
    if (upstream !== null && this.#chunked && !upstream.destroyed) upstream.write(LAST_CHUNK, 'latin1');
    this.bodyComplete = true;
    this.#exchange?.onRequestSent();
  }

  resumeBody(): void {
    if (!this.bodyComplete) this.#stream.resume();
  }

  respond(res: ParsedResponse, requestId: string, hsts: string | null, edits: ResponseEdits | null): boolean {
    const headers: Record<string, string | string[] | number> = { ':status': res.status };
    const buf = res.buf;
    const fields = res.fields;
    for (let i = 0; i < fields.length; i += 3) {
      const name = buf.toString('latin1', fields[i], fields[i + 1]).toLowerCase();
      if ((hsts !== null && name === 'strict-transport-security') || CONNECTION_SPECIFIC.has(name) || (edits !== null && edits.remove.includes(name))) continue;
      let start = fields[i + 1] + 1;
      let end = fields[i + 2] - 2;
      while (buf[start] === 32 || buf[start] === 9) start++;
      while (end > start && (buf[end - 1] === 32 || buf[end - 1] === 9)) end--;
      const value = buf.toString('latin1', start, end);
      const existing = headers[name];
      if (existing === undefined) headers[name] = value;
      else if (Array.isArray(existing)) existing.push(value);
      else headers[name] = [String(existing), value];
    }
    if (!res.hasRequestId) headers['x-request-id'] = requestId;
    if (hsts !== null) headers['strict-transport-security'] = hsts;
    if (edits !== null) addFields(headers, edits.add);
    if (res.contentLength >= 0 && (edits === null || !edits.reframe)) headers['content-length'] = res.contentLength;
    const bodiless = res.framing === NO_BODY || (res.framing === LENGTH && res.contentLength === 0);
    this.#ended = bodiless;
    try {
      if (!this.#stream.destroyed) this.#stream.respond(headers, { endStream: bodiless });
    } catch {
      // A head node:http2 will not send (a field it refuses): the stream is reset, the process lives.
      this.#ended = true;
      this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
    return false;
  }

  write(data: Buffer): boolean {
    return this.#stream.destroyed ? true : this.#stream.write(data);
  }

  end(): void {
    this.#done();
    if (!this.#ended && !this.#stream.destroyed) this.#stream.end();
    this.#ended = true;
  }

  cut(): void {
    this.#done();
    // A stream closed without an error code would look complete: reset it with one.
    if (!this.#stream.destroyed) this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  fail(status: number, requestId: string, hsts: string | null): void {
    this.#done();
    if (this.#stream.headersSent) {
      this.cut();
      return;
    }
    answer(this.#stream, this.#exchange?.method ?? 'GET', status, requestId, hsts);
  }

  #done(): void {
    if (this.#exchange !== null) this.#server.exchanges.delete(this.#exchange);
    // An unread request body is not wanted any more (the client learns from the response's END_STREAM).
    if (!this.bodyComplete) this.#stream.resume();
  }
}
