// One client connection of the raw engine: reads request heads (strictly, see
// request-head.ts), refuses malformed ones the way proxy-server.ts does,
// frames and validates request bodies while forwarding them, runs one
// Exchange at a time (pipelined requests wait in the buffer, in order), and
// keeps the connection alive between requests within --keep-alive-timeout.
import { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { acmeChallengeAnswer, rawChallengeResponse, recordChallenge } from '../acme/challenge-responder.ts';
import type { Backend } from '../backend.ts';
import { recordRedirect, recordUnrouted } from '../exchange-record.ts';
import { readRequestHead } from '../forward-headers.ts';
import { httpsLocation, requestTarget, type ProxyContext } from '../proxy-exchange.ts';
import type { UpgradeHandler } from '../proxy-server.ts';
import type { Route } from '../route-table.ts';
import { statusText } from '../upstream-errors.ts';
import { ChunkedDecoder, INVALID } from './chunked.ts';
import { Exchange } from './exchange.ts';
import { CR, LF, parseRequestHead, type ParsedRequest } from './request-head.ts';
import type { UpstreamPool } from './upstream-pool.ts';

/** What a connection needs from its server. */
export interface ServerSide {
  readonly ctx: ProxyContext;
  readonly maxHeaderSize: number;
  readonly clientHeaderTimeout: number;
  readonly clientIdleTimeout: number;
  readonly keepAliveTimeout: number;
  readonly draining: boolean;
  /** Where WebSocket upgrades go (the socket leaves this engine), or null to proxy them as plain requests. */
  readonly upgrade: UpgradeHandler | null;
  poolFor(backend: Backend): UpstreamPool;
  forget(conn: ClientConnection): void;
}

const HEAD = 0;
const BODY = 1;
const WAIT = 2;
const CLOSED = 3;

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

export class ClientConnection {
  readonly server: ServerSide;
  readonly socket: Socket;
  readonly #remote: string;
  #state = HEAD;
  #buf: Buffer | null = null;
  /** Bytes of #buf already checked for bare line ends while waiting for a head. */
  #scanned = 0;
  #headSince: number;
  #idleSince = 0;
  lastActivity: number;
  #served = 0;
  #exchange: Exchange | null = null;
  #processing = false;
  /** The request's body: Content-Length left, or chunked. */
  #remaining = 0;
  #chunked = false;
  readonly #decoder = new ChunkedDecoder();
  bodyComplete = true;
  bodyConsumed = false;
  /** The client asked to close after this exchange (Connection: close, HTTP/1.0, or half-close). */
  clientClose = false;
  #readPaused = false;
  #minor = 1;

  constructor(socket: Socket, server: ServerSide) {
    this.socket = socket;
    this.server = server;
    this.#remote = socket.remoteAddress ?? '';
    this.#headSince = this.lastActivity = Date.now();
    socket.on('data', this.#listeners.data);
    socket.on('drain', this.#listeners.drain);
    socket.on('end', this.#listeners.end);
    socket.on('error', this.#listeners.error);
    socket.on('close', this.#listeners.close);
  }

  readonly #listeners = {
    data: (chunk: Buffer) => this.#onData(chunk),
    drain: () => this.#exchange?.onClientDrain(),
    end: () => this.#onEnd(),
    error: () => {},
    close: () => this.#onClose(),
  };

  /** Gives the socket to the WebSocket proxy, as node:http's 'upgrade' event does. */
  #handOff(p: ParsedRequest, upgrade: UpgradeHandler): void {
    const socket = this.socket;
    for (const [event, listener] of Object.entries(this.#listeners)) socket.off(event, listener);
    const head = this.#buf ?? Buffer.alloc(0);
    this.#buf = null;
    this.#state = CLOSED;
    this.server.forget(this);
    const req = new IncomingMessage(socket);
    req.method = p.method;
    req.url = p.target;
    req.httpVersionMajor = 1;
    req.httpVersionMinor = p.minor;
    req.httpVersion = `1.${p.minor}`;
    req.rawHeaders = p.raw; // node:http computes req.headers from these
    req.complete = true;
    (req as IncomingMessage & { upgrade: boolean }).upgrade = true;
    this.#resume();
    upgrade(this.server.ctx, req, socket, head);
  }

  get closed(): boolean {
    return this.#state === CLOSED;
  }

  /** Idle between requests (nothing buffered, nothing in flight). */
  get idle(): boolean {
    return this.#state === HEAD && this.#exchange === null;
  }

  #onData(chunk: Buffer): void {
    this.lastActivity = Date.now();
    switch (this.#state) {
      case HEAD:
        if (this.#buf === null && this.#served > 0) this.#headSince = this.lastActivity;
        this.#append(chunk);
        this.#process();
        return;
      case BODY:
        if (this.#exchange?.upstream == null) this.#append(chunk);
        else this.#feedBody(chunk);
        return;
      case WAIT:
        this.#append(chunk);
        // Pipelined requests wait for the response ahead of them; stop reading once a head's worth is queued.
        if (this.#buf!.length > this.server.maxHeaderSize) this.#pause();
        return;
    }
  }

  #append(chunk: Buffer): void {
    this.#buf = this.#buf === null ? chunk : Buffer.concat([this.#buf, chunk]);
  }

  #pause(): void {
    if (!this.#readPaused) {
      this.#readPaused = true;
      this.socket.pause();
    }
  }

  #resume(): void {
    if (this.#readPaused) {
      this.#readPaused = false;
      this.socket.resume();
    }
  }

  /** Parses and starts requests while whole heads are buffered and nothing is in flight. */
  #process(): void {
    if (this.#processing) return;
    this.#processing = true;
    try {
      while (this.#state === HEAD && this.#buf !== null) {
        let buf = this.#buf;
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        while (buf.length >= 2 && buf[0] === CR && buf[1] === LF) buf = buf.subarray(2);
        if (buf.length === 0) {
          this.#buf = null;
          break;
        }
        this.#buf = buf;
        const parsed = parseRequestHead(buf, this.server.maxHeaderSize, this.#scanned);
        if (parsed === null) {
          this.#scanned = buf.length;
          return;
        }
        if (parsed.status !== 0) {
          this.refuse(parsed.status, parsed.reason);
          return;
        }
        this.#scanned = 0;
        this.#buf = parsed.headLength === buf.length ? null : buf.subarray(parsed.headLength);
        this.#startRequest(parsed);
      }
      if (this.#state === HEAD && this.#buf === null) this.#idleSince = Date.now();
    } finally {
      this.#processing = false;
    }
  }

  #startRequest(p: ParsedRequest): void {
    const upgrade = this.server.upgrade;
    if (p.websocket && upgrade !== null && p.contentLength <= 0 && !p.chunked) {
      this.#handOff(p, upgrade);
      return;
    }
    const ctx = this.server.ctx;
    const started = performance.now();
    this.#minor = p.minor;
    this.clientClose = this.clientClose || p.close;
    this.#chunked = p.chunked;
    this.#remaining = p.chunked ? 0 : Math.max(p.contentLength, 0);
    this.bodyComplete = !p.chunked && this.#remaining === 0;
    this.bodyConsumed = false;
    if (p.chunked) this.#decoder.reset();
    this.#state = this.bodyComplete ? WAIT : BODY;

    const head = readRequestHead(p.raw, 1, p.minor, this.#remote, ctx.proto);
    if (head.reject !== null) {
      this.#sendError(p.method, head.requestId, head.reject.status, head.reject.reason, started, head.host, p.target);
      return;
    }
    // Origin-form, or absolute-form whose authority wins over Host (RFC 9112 §3.2.2).
    const target = p.target.charCodeAt(0) === 47 /* / */ ? null : requestTarget(p.target, head.host);
    if (target === null && p.target.charCodeAt(0) !== 47) {
      this.#sendError(p.method, head.requestId, 400, 'invalid request target', started, head.host, p.target);
      return;
    }
    const host = target === null ? head.host : target.host;
    const path = target === null ? p.target : target.path;
    // ACME HTTP-01 (router/acme/challenge-responder.ts): before any route or redirect.
    const challenge = ctx.proto === 'http' ? acmeChallengeAnswer(ctx.table, p.method, path) : null;
    if (challenge !== null) {
      const close = !this.bodyComplete || this.clientClose || this.server.draining;
      this.socket.write(rawChallengeResponse(challenge, p.method, head.requestId, close, this.#minor), 'latin1');
      recordChallenge(ctx, started, p.method, host, path, head.requestId);
      this.exchangeDone(close);
      return;
    }
    const route = ctx.table.resolve(host, path);
    if (route === null) {
      this.#sendError(p.method, head.requestId, 404, 'no route', started, host, path);
      return;
    }
    if (route.httpsRedirect && ctx.proto === 'http') {
      this.#sendRedirect(p.method, head.requestId, route, host, path, started);
      return;
    }
    if (!this.bodyComplete) {
      // The body stays with the client until a backend connection is ready (so that a refused
      // connect can fail over with the body intact).
      this.#pause();
      if (p.expectContinue && p.minor === 1) this.socket.write(CONTINUE);
    }
    let upstreamHead = `${p.method} ${path} HTTP/1.1\r\n`;
    const headers = head.headers;
    for (let i = 0; i < headers.length; i += 2) upstreamHead += `${headers[i]}: ${headers[i + 1]}\r\n`;
    upstreamHead += p.chunked ? 'transfer-encoding: chunked\r\n\r\n' : '\r\n';
    const exchange = new Exchange(this, ctx, p.method, head, route, host, path, started, upstreamHead, p.minor);
    this.#exchange = exchange;
    exchange.start();
  }

  /** Forwards the body bytes buffered so far to the exchange's new upstream connection, and reads on. */
  pumpBody(): void {
    if (this.#state === BODY && this.#buf !== null) {
      const buf = this.#buf;
      this.#buf = null;
      this.#feedBody(buf);
    }
    if (this.#state !== CLOSED && this.#exchange?.upstream != null && this.#exchange.upstream.socket.writableNeedDrain === false) this.#resume();
  }

  #feedBody(chunk: Buffer): void {
    const upstream = this.#exchange!.upstream!.socket;
    const len = chunk.length;
    let end: number;
    let complete: boolean;
    if (this.#chunked) {
      const r = this.#decoder.feed(chunk, 0, len, null);
      if (r === INVALID) {
        this.#badBody(this.#decoder.error);
        return;
      }
      complete = r >= 0;
      end = complete ? r : len;
    } else {
      end = Math.min(this.#remaining, len);
      this.#remaining -= end;
      complete = this.#remaining === 0;
    }
    if (end > 0) {
      this.bodyConsumed = true;
      if (!upstream.write(end === len ? chunk : chunk.subarray(0, end))) this.#pause();
    }
    if (complete) {
      this.bodyComplete = true;
      this.#state = WAIT;
      if (end < len) this.#append(chunk.subarray(end));
      this.#exchange!.onRequestSent();
    }
  }

  /** The upstream connection drained: read more of the request body. */
  resumeFromUpstream(): void {
    if (this.#state === BODY) this.#resume();
  }

  #badBody(reason: string): void {
    const exchange = this.#exchange;
    this.#exchange = null;
    if (exchange !== null) {
      exchange.abort(reason);
      if (exchange.headSent) {
        this.destroy();
        return;
      }
    }
    this.refuse(400, reason);
  }

  /** Called by the exchange once its response is complete (or it wrote an error). */
  exchangeDone(close: boolean): void {
    this.#exchange = null;
    this.#served++;
    if (this.#state === CLOSED) return;
    if (close || this.server.draining) {
      this.#closeGracefully();
      return;
    }
    this.#state = HEAD;
    this.#scanned = 0;
    this.#headSince = this.#idleSince = Date.now();
    this.#resume();
    if (!this.#processing) this.#process();
  }

  /**
   * Writes an error response as proxy-exchange's writeError does; returns whether the connection
   * closes after it (an unread body, or a framing-level refusal).
   */
  writeError(status: number, requestId: string, method: string, hsts: string | null = null): boolean {
    const text = statusText[status] ?? 'Error';
    const body = `${status} ${text}\n`;
    const close = !this.bodyComplete || status === 400 || status === 501 || status === 505 || this.clientClose || this.server.draining;
    const connection = close ? 'connection: close\r\n' : this.#minor === 0 ? 'connection: keep-alive\r\n' : '';
    const sts = hsts === null ? '' : `strict-transport-security: ${hsts}\r\n`;
    this.socket.write(`HTTP/1.1 ${status} ${text}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\nx-request-id: ${requestId}\r\n${sts}${connection}\r\n${method === 'HEAD' ? '' : body}`, 'latin1');
    return close;
  }

  /** A 308 to the same URL on HTTPS, as proxy-exchange's sendRedirect. */
  #sendRedirect(method: string, requestId: string, route: Route, host: string, path: string, started: number): void {
    const ctx = this.server.ctx;
    const location = httpsLocation(ctx, host, path);
    const body = `308 Permanent Redirect: ${location}\n`;
    const close = !this.bodyComplete || this.clientClose || this.server.draining;
    const connection = close ? 'connection: close\r\n' : this.#minor === 0 ? 'connection: keep-alive\r\n' : '';
    this.socket.write(`HTTP/1.1 308 Permanent Redirect\r\nlocation: ${location}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n${connection}\r\n${method === 'HEAD' ? '' : body}`, 'latin1');
    recordRedirect(ctx, route, started, method, host, path, requestId, location);
    this.exchangeDone(close);
  }

  #sendError(method: string, requestId: string, status: number, reason: string, started: number, host: string, path: string): void {
    const close = this.writeError(status, requestId, method);
    recordUnrouted(this.server.ctx, started, method, host, path, status, requestId, reason);
    this.exchangeDone(close);
  }

  /** Refuses a malformed request (as proxy-server.ts' clientError handler does) and closes. */
  refuse(status: number, reason: string): void {
    if (this.#state === CLOSED) return;
    this.server.ctx.accessLog?.info({ status, error: reason, remote: this.#remote }, 'refused malformed request');
    const body = `${status} ${statusText[status]}\n`;
    this.socket.write(`HTTP/1.1 ${status} ${statusText[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
    this.#closeGracefully();
  }

  #closeGracefully(): void {
    this.#state = CLOSED;
    this.#buf = null;
    this.socket.end();
    // Keep reading (and discarding) so the client's FIN can arrive; give up after a second.
    this.#resume();
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  destroy(): void {
    this.#state = CLOSED;
    this.socket.destroy();
  }

  #onEnd(): void {
    // The client will send nothing more. As node:http does (httpAllowHalfOpen off), a request in
    // flight is aborted (499); an idle connection is closed once our writes are out.
    this.clientClose = true;
    const exchange = this.#exchange;
    if (exchange === null) {
      if (this.#state !== CLOSED) this.#closeGracefully();
      return;
    }
    this.#exchange = null;
    exchange.onClientGone();
    this.destroy();
  }

  #onClose(): void {
    this.#state = CLOSED;
    this.server.forget(this);
    const exchange = this.#exchange;
    this.#exchange = null;
    exchange?.onClientGone();
  }

  /** Timeouts, checked by the server's sweep. */
  check(now: number): void {
    switch (this.#state) {
      case HEAD:
        if (this.#buf !== null || this.#served === 0) {
          if (now - this.#headSince >= this.server.clientHeaderTimeout) this.refuse(408, 'ERR_HTTP_REQUEST_TIMEOUT');
        } else if (now - this.#idleSince >= this.server.keepAliveTimeout) {
          this.destroy();
        }
        return;
      case BODY:
      case WAIT:
        this.#exchange?.check(now);
        if ((this.#state as number) !== CLOSED && now - this.lastActivity >= this.server.clientIdleTimeout) this.destroy();
        return;
    }
  }
}
