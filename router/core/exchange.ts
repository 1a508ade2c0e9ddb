// One client request proxied over raw upstream connections, whatever protocol
// the client speaks (the ClientSide adapter frames it): the service (the
// route's, its split's choice, or a sticky cookie's pin) and the backend by the
// route's policy, a mirror copy when the route asks, failover when nothing was sent, one retry of an
// idempotent request after sending, passive health, 502/503/504 through
// upstream-errors.ts, the upstream response head parsed and its body forwarded
// as it comes with backpressure both ways, timeouts, and the per-request record.
// Never: write protocol bytes to a client, or read a client socket.
import type { Backend } from '../table/backend.ts';
import { recordProxied } from './exchange-record.ts';
import type { RequestHead } from './forward-headers.ts';
import { ChunkedDecoder, INVALID } from '../protocols/http1/chunked.ts';
import { CHUNKED, LENGTH, NO_BODY, parseResponseHead, UNTIL_CLOSE, type ParsedResponse } from '../protocols/http1/response-head.ts';
import { socketError, type UpstreamConn, type UpstreamUser } from './upstream-pool.ts';
import type { ProxyContext } from './proxy-context.ts';
import type { Route } from '../table/route-table.ts';
import { classifyUpstreamError } from './upstream-errors.ts';
import type { ClientSide } from './client-side.ts';
import { ResponseEncoder } from '../middleware/compression.ts';
import type { ShapedRequest } from '../middleware/route-middlewares.ts';
import type { ServicePool } from '../table/service-pool.ts';
import { mirrorRequest } from './mirror-request.ts';
import type { ResponseEdits } from './response-edits.ts';
import { pinnedBackend, withStickyPin } from './sticky-session.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
/** The backend closed the connection under a sent request: on a reused keep-alive connection, typically its idle timeout racing the request. */
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const MAX_ATTEMPTS_CAP = 5;

/** What a deadline is for. */
const NONE = 0;
const HEADERS = 1;
const BODY = 2;

/** The upstream request head: request line, the forwarded headers (Host and Content-Length among them), our chunked framing. */
export function upstreamRequestHead(method: string, path: string, headers: readonly string[], chunked: boolean): string {
  let head = `${method} ${path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return chunked ? `${head}transfer-encoding: chunked\r\n\r\n` : `${head}\r\n`;
}

export class Exchange implements UpstreamUser {
  readonly #client: ClientSide;
  readonly #ctx: ProxyContext;
  readonly method: string;
  readonly #head: RequestHead;
  readonly #route: Route;
  /** The service serving this request: the route's, or the one its split chose. */
  #pool: ServicePool;
  /** The backend a sticky cookie pinned (then no new cookie is set unless another backend answers). */
  #pinned: Backend | null = null;
  readonly #host: string;
  readonly #path: string;
  readonly #started: number;
  readonly #upstreamHead: string;
  #backend: Backend | null = null;
  #counted = false;
  #tried: Backend[] | null = null;
  #attempts = 0;
  #sent = false;
  #retriedAfterSend = false;
  #bytes = 0;
  status = 0;
  done = false;
  upstream: UpstreamConn | null = null;
  /** The response head went to the client side. */
  headSent = false;
  #res: ParsedResponse | null = null;
  #resBuf: Buffer | null = null;
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;
  /** The client takes the decoded data of a chunked response, not the chunks. */
  #dechunk = false;
  #extra = false;
  #deadline = 0;
  #deadlineKind = NONE;
  #upstreamPaused = false;
  /** The request's part of the route's middlewares, or null. */
  readonly #shaped: ShapedRequest | null;
  /** The response body's encoder (compression), between this exchange and the client; null: bytes go straight. */
  #encoder: ResponseEncoder | null = null;

  constructor(client: ClientSide, ctx: ProxyContext, method: string, head: RequestHead, route: Route, host: string, path: string, started: number, upstreamHead: string, shaped: ShapedRequest | null = null) {
    this.#client = client;
    this.#ctx = ctx;
    this.method = method;
    this.#head = head;
    this.#route = route;
    this.#pool = route.pool;
    this.#host = host;
    this.#path = path;
    this.#started = started;
    this.#upstreamHead = upstreamHead;
    this.#shaped = shaped;
  }

  get requestId(): string {
    return this.#head.requestId;
  }

  start(): void {
    this.#ctx.inFlight++;
    const route = this.#route;
    const mirror = route.mirror;
    if (mirror !== null && !this.#head.hasBody && mirror.take()) mirrorRequest(this.#ctx, route, mirror, this.#upstreamHead);
    if (route.sticky !== null) {
      const pin = pinnedBackend(route, this.#head.headers, this.#ctx.table.stickyKey, Date.now());
      if (pin !== null) {
        this.#pool = pin.pool;
        this.#pinned = pin.backend;
        this.#send(pin.backend, Date.now());
        return;
      }
    }
    if (route.split !== null) this.#pool = route.split.next();
    this.#dispatch(null);
  }

  #dispatch(fallback: Backend | null): void {
    const now = Date.now();
    const backend = this.#route.select(this.#pool, now, this.#tried) ?? fallback;
    if (backend === null) {
      this.#fail(503, this.#attempts === 0 ? 'no live backend' : 'no backend left to try');
      return;
    }
    this.#send(backend, now);
  }

  #send(backend: Backend, now: number): void {
    this.#backend = backend;
    this.#sent = false;
    this.#attempts++;
    backend.active++;
    this.#counted = true;
    this.#client.poolFor(backend).acquire(this, now);
  }

  onUpstreamReady(conn: UpstreamConn): void {
    if (this.done) {
      conn.pool.release(conn, Date.now());
      return;
    }
    this.upstream = conn;
    this.#sent = true;
    this.#res = null;
    this.#resBuf = null;
    const socket = conn.socket;
    const client = this.#client;
    if (client.bodyComplete) {
      socket.write(this.#upstreamHead, 'latin1');
      this.onRequestSent();
    } else {
      socket.cork();
      socket.write(this.#upstreamHead, 'latin1');
      client.sendBody(socket);
      socket.uncork();
    }
  }

  /** The whole request is at the backend: the response-header timeout runs. */
  onRequestSent(): void {
    if (this.upstream === null || this.#res !== null || this.done) return;
    this.#deadlineKind = HEADERS;
    this.#deadline = Date.now() + (this.#route.responseTimeout ?? this.#ctx.responseTimeout);
  }

  onUpstreamDrain(): void {
    this.#client.resumeBody();
  }

  /** The client side drained: the encoder, or else the paused upstream, may send again. */
  onClientDrain(): void {
    if (this.#encoder !== null) this.#encoder.clientDrained();
    else this.#resumeUpstream();
  }

  readonly #resumeUpstream = (): void => {
    if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      // The idle timeout measures the backend's silence, which starts again now.
      if (this.#deadlineKind === BODY) this.#deadline = Date.now() + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
      this.upstream?.socket.resume();
    }
  };

  onUpstreamData(chunk: Buffer): void {
    if (this.#res === null) {
      let buf = this.#resBuf === null ? chunk : Buffer.concat([this.#resBuf, chunk]);
      for (;;) {
        const res = parseResponseHead(buf, this.method);
        if (res === null) {
          // A copy: the chunk's memory is the upstream connection's read buffer.
          this.#resBuf = Buffer.from(buf);
          return;
        }
        if (typeof res === 'string') {
          this.#upstreamFailed(socketError(res, 'HPE_INVALID_RESPONSE'));
          return;
        }
        if (res.status < 200) {
          // Interim responses (we sent no Expect and no Upgrade): dropped, as undici does.
          if (res.status === 101) {
            this.#upstreamFailed(socketError('unexpected 101 Switching Protocols', 'HPE_INVALID_RESPONSE'));
            return;
          }
          buf = buf.subarray(res.headLength);
          if (buf.length === 0) {
            this.#resBuf = null;
            return;
          }
          continue;
        }
        this.#resBuf = null;
        this.#startResponse(res, buf.length - res.headLength);
        if (res.headLength < buf.length && !this.done) this.#body(buf, res.headLength);
        return;
      }
    }
    this.#body(chunk, 0);
  }

  /** `leftover`: bytes after the head in this read (body bytes, or bytes that belong to no response). */
  #startResponse(res: ParsedResponse, leftover: number): void {
    this.#res = res;
    this.status = res.status;
    this.headSent = true;
    let edits: ResponseEdits | null = null;
    if (this.#shaped !== null) {
      const shaped = this.#shaped.responseEdits(res);
      edits = shaped.edits;
      if (shaped.encoding !== null) this.#encoder = new ResponseEncoder(shaped.encoding, this.#client, this.#resumeUpstream);
    }
    // A sticky route pins a client that is not pinned to this backend yet (a Set-Cookie of its own).
    edits = withStickyPin(this.#route, this.#backend!, this.#pinned, this.#ctx.table.stickyKey, this.#ctx.proto === 'https', edits);
    const passChunks = this.#client.respond(res, this.#head.requestId, this.#hsts(), edits);
    if (res.framing === CHUNKED) {
      (this.#decoder ??= new ChunkedDecoder()).reset();
      this.#dechunk = !passChunks;
    } else if (res.framing === LENGTH) {
      this.#remaining = res.contentLength;
    }
    if (res.framing === NO_BODY || (res.framing === LENGTH && res.contentLength === 0)) {
      // Bytes after a complete response belong to no request: the connection is not reused.
      this.#extra = leftover > 0;
      this.#responseEnd();
      return;
    }
    this.#deadlineKind = BODY;
    this.#deadline = Date.now() + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
  }

  #write(data: Buffer): void {
    const encoder = this.#encoder;
    const ok = encoder === null ? this.#client.write(data) : encoder.write(data);
    // Bytes still queued on the client side (or in the encoder) may be the upstream read buffer's: it must not be reused.
    if (this.upstream !== null && (encoder !== null || this.#client.writePending)) this.upstream.retained = true;
    if (!ok && !this.#upstreamPaused && this.upstream !== null) {
      this.#upstreamPaused = true;
      this.upstream.socket.pause();
    }
  }

  #body(chunk: Buffer, start: number): void {
    const res = this.#res!;
    this.#deadline = Date.now() + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
    const len = chunk.length;
    switch (res.framing) {
      case LENGTH: {
        const n = Math.min(this.#remaining, len - start);
        this.#write(start === 0 && n === len ? chunk : chunk.subarray(start, start + n));
        this.#bytes += n;
        this.#remaining -= n;
        if (this.#remaining === 0) {
          this.#extra = start + n < len;
          this.#responseEnd();
        }
        return;
      }
      case CHUNKED: {
        const decoder = this.#decoder!;
        const end = decoder.feed(chunk, start, len, this.#dechunk ? this.#sink : null);
        if (end === INVALID) {
          this.#upstreamFailed(socketError(decoder.error, 'HPE_INVALID_CHUNK_SIZE'));
          return;
        }
        const stop = end < 0 ? len : end;
        if (!this.#dechunk) this.#write(start === 0 && stop === len ? chunk : chunk.subarray(start, stop));
        this.#bytes = decoder.dataBytes;
        if (end >= 0) {
          this.#extra = end < len;
          this.#responseEnd();
        }
        return;
      }
      default:
        this.#write(start === 0 ? chunk : chunk.subarray(start));
        this.#bytes += len - start;
    }
  }

  readonly #sink = (buf: Buffer, start: number, end: number): void => {
    if (end > start) this.#write(buf.subarray(start, end));
  };

  onUpstreamEnd(): void {
    if (this.#res !== null && this.#res.framing === UNTIL_CLOSE) {
      this.upstream = null;
      this.#responseEnd();
      return;
    }
    this.onUpstreamError(socketError('other side closed', 'UND_ERR_SOCKET'));
  }

  onUpstreamError(err: NodeJS.ErrnoException): void {
    this.upstream = null;
    this.#upstreamFailed(err);
  }

  #responseEnd(): void {
    const backend = this.#backend!;
    const upstream = this.upstream;
    this.upstream = null;
    this.#deadlineKind = NONE;
    if (upstream !== null) {
      if (this.#res!.keepAlive && !this.#extra && this.#client.bodyComplete && !upstream.dead) {
        if (this.#upstreamPaused) upstream.socket.resume();
        if (this.#res!.keepAliveMs > 0) upstream.maxIdle = this.#res!.keepAliveMs;
        upstream.pool.release(upstream, Date.now());
      } else {
        upstream.kill();
      }
    }
    this.#upstreamPaused = false;
    this.#uncount();
    backend.recordSuccess();
    this.done = true;
    this.#finish(backend);
    const encoder = this.#encoder;
    if (encoder === null) this.#client.end();
    else encoder.end(() => this.#client.end());
  }

  #uncount(): void {
    if (this.#counted) {
      this.#counted = false;
      this.#backend!.active--;
    }
  }

  #upstreamFailed(err: NodeJS.ErrnoException): void {
    if (this.done) return;
    const backend = this.#backend!;
    const upstream = this.upstream;
    this.upstream = null;
    upstream?.kill();
    this.#uncount();
    this.#deadlineKind = NONE;
    this.#upstreamPaused = false;
    const failure = classifyUpstreamError(err);
    if (failure.backendFault && backend.recordFailure(Date.now())) {
      this.#ctx.log.warn({ backend: backend.address, service: this.#pool.name, until: new Date(backend.ejectedUntil).toISOString(), err: failure.reason }, 'backend ejected');
      this.#client.poolFor(backend).dropIdle();
    }
    if (this.headSent) {
      // Too late for another status: the client must see a truncated response.
      this.#encoder?.destroy();
      this.done = true;
      this.#finish(backend, failure.reason);
      this.#client.cut();
      return;
    }
    const closedUnderRequest = this.#sent && CLOSED_UNDER_REQUEST.has(err.code ?? '');
    if (this.#canRetry(closedUnderRequest)) {
      (this.#tried ??= []).push(backend);
      if (this.#sent) this.#retriedAfterSend = true;
      this.#res = null;
      this.#resBuf = null;
      // On the same backend (its pool dropped the closed connection) when the balancer has no other left.
      this.#dispatch(closedUnderRequest ? backend : null);
      return;
    }
    this.#fail(failure.status, failure.reason);
  }

  #canRetry(closedUnderRequest: boolean): boolean {
    if (this.#client.bodyConsumed || this.#client.closed) return false;
    if (this.#attempts >= Math.min(this.#ctx.maxAttempts, MAX_ATTEMPTS_CAP)) return false;
    // Nothing left the proxy: any method may go to the next backend.
    if (!this.#sent) return this.#attempts < this.#pool.size;
    if (this.#retriedAfterSend || !IDEMPOTENT.has(this.method)) return false;
    // Sent: idempotent requests get one more attempt, on another backend, or on the same one (on
    // another connection) when it closed the connection under the request, as nginx retries a
    // failed cached keep-alive connection.
    return closedUnderRequest || this.#attempts < this.#pool.size;
  }

  #fail(status: number, reason: string): void {
    this.done = true;
    this.status = status;
    this.#finish(this.#backend, reason);
    this.#client.fail(status, this.#head.requestId, this.#hsts());
  }

  /** The route's Strict-Transport-Security on HTTPS (it replaces the backend's), or null. */
  #hsts(): string | null {
    return this.#ctx.proto === 'https' ? this.#route.hsts : null;
  }

  /** Timeouts, checked by the adapter's sweep. */
  check(now: number): void {
    if (this.#deadlineKind === NONE || now < this.#deadline || this.done) return;
    if (this.#upstreamPaused) {
      // The backend is silent because the client stopped reading: the client's timeout, not the backend's.
      this.#endEarly();
      this.#finish(this.#backend, 'client stopped reading');
      this.#client.cut();
      return;
    }
    const code = this.#deadlineKind === HEADERS ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT';
    this.#upstreamFailed(socketError(code === 'UND_ERR_HEADERS_TIMEOUT' ? 'headers timeout' : 'body timeout', code));
  }

  /** The client went away before the exchange ended. */
  onClientGone(): void {
    if (this.done) return;
    this.#endEarly();
    this.status = this.status || 499;
    this.#finish(this.#backend);
  }

  /** The request body turned out malformed: abort the upstream request, never blaming the backend. */
  abort(reason: string): void {
    if (this.done) return;
    this.#endEarly();
    this.status = this.headSent ? this.status : 400;
    this.#finish(this.#backend, reason);
  }

  /**
   * The streamed request body passed the route's maxBodySize: 413 when no response started (the
   * backend's connection is closed: it had part of a body), else the response is cut.
   */
  bodyTooLarge(): void {
    if (this.done) return;
    const headSent = this.headSent;
    this.#endEarly();
    if (!headSent) this.status = 413;
    this.#finish(this.#backend, 'request body above maxBodySize');
    if (headSent) this.#client.cut();
    else this.#client.fail(413, this.#head.requestId, this.#hsts());
  }

  /** Ends the exchange before the upstream finished: kill its connection, or leave the pool's queue. */
  #endEarly(): void {
    this.#encoder?.destroy();
    this.done = true;
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) upstream.kill();
    else if (this.#backend !== null) this.#client.poolFor(this.#backend).cancel(this);
    this.#uncount();
    this.#deadlineKind = NONE;
  }

  #finish(backend: Backend | null, error?: string): void {
    this.#ctx.inFlight--;
    recordProxied(this.#ctx, this.#pool, backend, this.#started, this.method, this.#host, this.#path, this.status, this.#bytes, this.#attempts, this.#head, error);
  }
}
