// One client request proxied over raw upstream connections: the same
// semantics as proxy-exchange.ts (failover when nothing was sent, one retry of
// an idempotent request after sending, passive health, 502/503/504 through
// upstream-errors.ts, the same access-log line), with the response head parsed
// and rewritten here and the body forwarded as it comes, with backpressure.
import type { Backend } from '../backend.ts';
import type { RequestHead } from '../forward-headers.ts';
import type { ProxyContext } from '../proxy-exchange.ts';
import type { Route } from '../route-table.ts';
import { recordProxied } from '../exchange-record.ts';
import { classifyUpstreamError } from '../upstream-errors.ts';
import { ChunkedDecoder, INVALID } from './chunked.ts';
import type { ClientConnection } from './connection.ts';
import { CHUNKED, clientResponseHead, LENGTH, NO_BODY, parseResponseHead, UNTIL_CLOSE, type ParsedResponse } from './response-head.ts';
import { socketError, type UpstreamConn, type UpstreamUser } from './upstream-pool.ts';

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CLOSED_UNDER_REQUEST = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);
const MAX_ATTEMPTS_CAP = 5;
/** Largest head plus first body piece copied into one buffer (Buffer.allocUnsafe pools below 4 KiB). */
const COALESCE_MAX = 4095;

/** What a deadline is for. */
const NONE = 0;
const HEADERS = 1;
const BODY = 2;

export class Exchange implements UpstreamUser {
  readonly #conn: ClientConnection;
  readonly #ctx: ProxyContext;
  readonly method: string;
  readonly #head: RequestHead;
  readonly #route: Route;
  readonly #host: string;
  readonly #path: string;
  readonly #started: number;
  readonly #upstreamHead: string;
  readonly #minor: number;
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
  /** The response head went to the client. */
  headSent = false;
  #res: ParsedResponse | null = null;
  #resBuf: Buffer | null = null;
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;
  #dechunk = false;
  #closeClient = false;
  #extra = false;
  #deadline = 0;
  #deadlineKind = NONE;
  #upstreamPaused = false;
  /** The client response head, until the first body bytes go with it. */
  #pendingHead: Buffer | null = null;

  constructor(conn: ClientConnection, ctx: ProxyContext, method: string, head: RequestHead, route: Route, host: string, path: string, started: number, upstreamHead: string, minor: number) {
    this.#conn = conn;
    this.#ctx = ctx;
    this.method = method;
    this.#head = head;
    this.#route = route;
    this.#host = host;
    this.#path = path;
    this.#started = started;
    this.#upstreamHead = upstreamHead;
    this.#minor = minor;
  }

  start(): void {
    this.#ctx.inFlight++;
    this.#dispatch(null);
  }

  #dispatch(fallback: Backend | null): void {
    const route = this.#route;
    const now = Date.now();
    const backend = route.select(route.pool, now, this.#tried) ?? fallback;
    if (backend === null) {
      this.#fail(503, this.#attempts === 0 ? 'no live backend' : 'no backend left to try');
      return;
    }
    this.#backend = backend;
    this.#sent = false;
    this.#attempts++;
    backend.active++;
    this.#counted = true;
    this.#conn.server.poolFor(backend).acquire(this, now);
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
    if (this.#conn.bodyComplete) {
      socket.write(this.#upstreamHead, 'latin1');
    } else {
      socket.cork();
      socket.write(this.#upstreamHead, 'latin1');
      this.#conn.pumpBody();
      socket.uncork();
    }
    if (this.#conn.bodyComplete && !this.done) this.onRequestSent();
  }

  /** The whole request is at the backend: the response-header timeout runs. */
  onRequestSent(): void {
    if (this.upstream === null || this.#res !== null) return;
    this.#deadlineKind = HEADERS;
    this.#deadline = Date.now() + (this.#route.responseTimeout ?? this.#ctx.responseTimeout);
  }

  onUpstreamDrain(): void {
    this.#conn.resumeFromUpstream();
  }

  onClientDrain(): void {
    if (this.#upstreamPaused) {
      this.#upstreamPaused = false;
      // The idle timeout measures the backend's silence, which starts again now.
      if (this.#deadlineKind === BODY) this.#deadline = Date.now() + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
      this.upstream?.socket.resume();
    }
  }

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
        // The head never waits for body bytes that are not here yet.
        this.#flushHead();
        return;
      }
    }
    this.#body(chunk, 0);
  }

  /** `leftover`: bytes after the head in this read (body bytes, or bytes that belong to no response). */
  #startResponse(res: ParsedResponse, leftover: number): void {
    this.#res = res;
    this.status = res.status;
    const conn = this.#conn;
    let chunked = false;
    this.#closeClient = conn.clientClose || conn.server.draining || !conn.bodyComplete;
    switch (res.framing) {
      case CHUNKED:
        (this.#decoder ??= new ChunkedDecoder()).reset();
        if (this.#minor === 0) {
          this.#dechunk = true;
          this.#closeClient = true;
        } else {
          chunked = true;
        }
        break;
      case UNTIL_CLOSE:
        this.#closeClient = true;
        break;
      case LENGTH:
        this.#remaining = res.contentLength;
        break;
    }
    const connection = this.#closeClient ? 'close' : this.#minor === 0 ? 'keep-alive' : null;
    this.headSent = true;
    // Written with the first body bytes, in one write when they are few.
    const { head, length } = clientResponseHead(res, this.#head.requestId, chunked, connection, this.#hsts());
    this.#pendingHead = head.subarray(0, length);
    if (res.framing === NO_BODY || (res.framing === LENGTH && res.contentLength === 0)) {
      // Bytes after a complete response belong to no request: the connection is not reused.
      this.#extra = leftover > 0;
      this.#flushHead();
      this.#responseEnd();
      return;
    }
    this.#deadlineKind = BODY;
    this.#deadline = Date.now() + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
  }

  #flushHead(): void {
    const head = this.#pendingHead;
    if (head !== null) {
      this.#pendingHead = null;
      this.#write(head);
    }
  }

  #write(data: string | Buffer): void {
    const head = this.#pendingHead;
    if (head !== null) {
      this.#pendingHead = null;
      if (typeof data !== 'string' && head.length + data.length <= COALESCE_MAX) {
        // Small: one copy into Buffer's shared pool, one write.
        const out = Buffer.allocUnsafe(head.length + data.length);
        head.copy(out, 0);
        data.copy(out, head.length);
        data = out;
      } else {
        // Larger: one writev, no copy (a fresh buffer that size would be external memory for the GC).
        const socket = this.#conn.socket;
        socket.cork();
        socket.write(head);
        const ok = socket.write(data, 'latin1');
        socket.uncork();
        this.#afterWrite(ok);
        return;
      }
    }
    this.#afterWrite(this.#conn.socket.write(data, 'latin1'));
  }

  #afterWrite(ok: boolean): void {
    // Bytes still queued on the client socket may be the upstream read buffer's: it must not be reused.
    if (this.#conn.socket.writableLength > 0 && this.upstream !== null) this.upstream.retained = true;
    if (!ok && !this.#upstreamPaused && this.upstream !== null) {
      this.#upstreamPaused = true;
      this.upstream.socket.pause();
    }
  }

  #body(chunk: Buffer, start: number): void {
    const res = this.#res!;
    const now = Date.now();
    this.#conn.lastActivity = now;
    this.#deadline = now + (this.#route.idleTimeout ?? this.#ctx.idleTimeout);
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
    this.#flushHead();
    const backend = this.#backend!;
    const upstream = this.upstream;
    this.upstream = null;
    this.#deadlineKind = NONE;
    if (upstream !== null) {
      if (this.#res!.keepAlive && !this.#extra && this.#conn.bodyComplete && !upstream.dead) {
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
    this.#conn.exchangeDone(this.#closeClient);
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
      this.#ctx.log.warn({ backend: backend.address, service: this.#route.pool.name, until: new Date(backend.ejectedUntil).toISOString(), err: failure.reason }, 'backend ejected');
      this.#conn.server.poolFor(backend).dropIdle();
    }
    if (this.headSent) {
      // Too late for another status: cut the client off so it sees a truncated response.
      this.#flushHead();
      this.done = true;
      this.#finish(backend, failure.reason);
      this.#conn.destroy();
      return;
    }
    const closedUnderRequest = this.#sent && CLOSED_UNDER_REQUEST.has(err.code ?? '');
    if (this.#canRetry(closedUnderRequest)) {
      (this.#tried ??= []).push(backend);
      if (this.#sent) this.#retriedAfterSend = true;
      this.#res = null;
      this.#resBuf = null;
      this.#dispatch(closedUnderRequest ? backend : null);
      return;
    }
    this.#fail(failure.status, failure.reason);
  }

  #canRetry(closedUnderRequest: boolean): boolean {
    if (this.#conn.bodyConsumed || this.#conn.closed) return false;
    if (this.#attempts >= Math.min(this.#ctx.maxAttempts, MAX_ATTEMPTS_CAP)) return false;
    if (!this.#sent) return this.#attempts < this.#route.pool.size;
    if (this.#retriedAfterSend || !IDEMPOTENT.has(this.method)) return false;
    return closedUnderRequest || this.#attempts < this.#route.pool.size;
  }

  #fail(status: number, reason: string): void {
    this.done = true;
    this.status = status;
    const close = this.#conn.writeError(status, this.#head.requestId, this.method, this.#hsts());
    this.#finish(this.#backend, reason);
    this.#conn.exchangeDone(close);
  }

  /** The route's Strict-Transport-Security on HTTPS (it replaces the backend's), or null. */
  #hsts(): string | null {
    return this.#ctx.proto === 'https' ? this.#route.hsts : null;
  }

  /** Timeouts, checked by the server's sweep. */
  check(now: number): void {
    if (this.#deadlineKind === NONE || now < this.#deadline || this.done) return;
    if (this.#upstreamPaused) {
      // The backend is silent because the client stopped reading: the client's timeout, not the backend's.
      this.#endEarly();
      this.#finish(this.#backend, 'client stopped reading');
      this.#conn.destroy();
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

  /** Ends the exchange before the upstream finished: kill its connection, or leave the pool's queue. */
  #endEarly(): void {
    this.done = true;
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null) upstream.kill();
    else if (this.#backend !== null) this.#conn.server.poolFor(this.#backend).cancel(this);
    this.#uncount();
    this.#deadlineKind = NONE;
  }

  #finish(backend: Backend | null, error?: string): void {
    this.#ctx.inFlight--;
    recordProxied(this.#ctx, this.#route, backend, this.#started, this.method, this.#host, this.#path, this.status, this.#bytes, this.#attempts, this.#head.requestId, error);
  }
}
