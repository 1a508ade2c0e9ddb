// One HTTP/1.1 client connection (plain or over TLS): the HTTP/1.1 adapter of
// the request core. It reads request heads (strictly, see request-head.ts),
// refuses malformed ones, frames and validates request bodies while forwarding
// them, frames responses (head bytes, chunked passed through or decoded for
// HTTP/1.0), runs one core Exchange at a time (pipelined requests wait in the
// buffer, in order), and keeps the connection alive within --keep-alive-timeout.
import type { Socket } from 'node:net';
import type { Backend } from '../../table/backend.ts';
import { IncomingMessage } from '../../core/node-http.ts';
import { recordAnswer, recordRedirect, recordUnrouted } from '../../core/exchange-record.ts';
import type { ClientSide } from '../../core/client-side.ts';
import type { RequestHead } from '../../core/forward-headers.ts';
import { Exchange, upstreamRequestHead } from '../../core/exchange.ts';
import type { ProxyContext } from '../../core/proxy-context.ts';
import type { UpgradeHandler } from '../websocket/websocket-proxy.ts';
import { ANSWER, AWAIT, REDIRECT, REFUSE, routeRequest, type SettledDecision } from '../../core/route-request.ts';
import type { ResponseEdits } from '../../core/response-edits.ts';
import type { LocalAnswer } from '../../middleware/local-answer.ts';
import { recordChallenge } from '../../acme/challenge-responder.ts';
import type { Route } from '../../table/route-table.ts';
import { statusText } from '../../core/upstream-errors.ts';
import { ChunkedDecoder, INVALID } from './chunked.ts';
import { CR, LF, parseRequestHead, type ParsedRequest } from './request-head.ts';
import { CHUNKED, clientResponseHead, UNTIL_CLOSE, type ParsedResponse } from './response-head.ts';
import type { UpstreamPool } from '../../core/upstream-pool.ts';

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

/** Where a client socket keeps its connection, for the listeners every connection shares. */
const CONNECTION = Symbol('tug.client-connection');
type OwnedSocket = Socket & { [CONNECTION]?: ClientConnection | null };

const HEAD = 0;
const BODY = 1;
const WAIT = 2;
const CLOSED = 3;

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const CRLF = Buffer.from('\r\n');
/** Largest head plus first body piece copied into one buffer (Buffer.allocUnsafe pools below 4 KiB). */
const COALESCE_MAX = 4095;

export class ClientConnection implements ClientSide {
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
  /** Made on the first chunked request body: most connections never see one. */
  #decoder: ChunkedDecoder | null = null;
  bodyComplete = true;
  bodyConsumed = false;
  /** The client asked to close after this exchange (Connection: close, HTTP/1.0, or half-close). */
  clientClose = false;
  #readPaused = false;
  /** Reading stopped because our own responses are not being read (see #process). */
  #awaitingDrain = false;
  #minor = 1;
  /** The response in progress closes the connection when it ends. */
  #closeAfter = false;
  /** The client response head, until the first body bytes go with it. */
  #pendingHead: Buffer | null = null;
  /** The response body is re-encoded (compression): this connection chunks it. */
  #ownChunks = false;
  /** Request body bytes read so far, and the route's maxBodySize (-1: none). */
  #bodyBytes = 0;
  #bodyLimit = -1;

  constructor(socket: Socket, server: ServerSide) {
    this.socket = socket;
    this.server = server;
    this.#remote = socket.remoteAddress ?? '';
    this.#headSince = this.lastActivity = Date.now();
    (socket as OwnedSocket)[CONNECTION] = this;
    for (const [event, listener] of ClientConnection.#listeners) socket.on(event, listener);
  }

  // The socket's listeners, shared by every connection (the socket leads to its connection): an
  // idle connection holds no closures of its own.
  static readonly #listeners: readonly [string, (this: OwnedSocket, chunk: Buffer) => void][] = [
    ['data', function (this: OwnedSocket, chunk: Buffer) { this[CONNECTION]!.#onData(chunk); }],
    ['drain', function (this: OwnedSocket) { this[CONNECTION]!.#onDrain(); }],
    ['end', function (this: OwnedSocket) { this[CONNECTION]!.#onEnd(); }],
    ['error', () => {}],
    ['close', function (this: OwnedSocket) { this[CONNECTION]!.#onClose(); }],
  ];

  /** Gives the socket to the WebSocket proxy, as node:http's 'upgrade' event does. */
  #handOff(p: ParsedRequest, upgrade: UpgradeHandler): void {
    const socket = this.socket;
    for (const [event, listener] of ClientConnection.#listeners) socket.off(event, listener);
    (socket as OwnedSocket)[CONNECTION] = null;
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
    (req as typeof req & { upgrade: boolean }).upgrade = true;
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

  #onDrain(): void {
    if (this.#exchange !== null) {
      this.#exchange.onClientDrain();
    } else if (this.#awaitingDrain && this.#state === HEAD) {
      this.#awaitingDrain = false;
      this.#resume();
      this.#process();
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
        // Pipelined requests the router answers itself (404, 308, 503...) cost no backend time: without
        // this bound a client that sends them and never reads would fill our memory with answers.
        if (this.socket.writableNeedDrain) {
          this.#awaitingDrain = true;
          this.#pause();
          return;
        }
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
    if (p.chunked) {
      if (this.#decoder === null) this.#decoder = new ChunkedDecoder();
      else this.#decoder.reset();
    }
    this.#state = this.bodyComplete ? WAIT : BODY;

    const decision = routeRequest(ctx, p.method, p.target, p.raw, 1, p.minor, this.#remote, null);
    if (decision.action !== AWAIT) {
      this.#act(p, decision, started);
      return;
    }
    // A password check runs: nothing more is read (the body stays with the client) until it settles.
    this.#pause();
    void decision.settle.then((settled) => {
      if (this.#state === CLOSED) return;
      if (this.bodyComplete) this.#resume();
      this.#act(p, settled, started);
    });
  }

  #act(p: ParsedRequest, decision: SettledDecision, started: number): void {
    const ctx = this.server.ctx;
    const { head, host, path } = decision;
    if (decision.action === ANSWER) {
      const close = this.#writeAnswer(decision.answer, head.requestId, p.method);
      if (decision.route === null) recordChallenge(ctx, started, p.method, host, path, head.requestId);
      else recordAnswer(ctx, decision.route, started, p.method, host, path, head, decision.answer.status, decision.answer.reason);
      this.#exchangeDone(close);
      return;
    }
    if (decision.action === REFUSE) {
      this.#sendError(p.method, head, decision.status, decision.reason, started, host, path);
      return;
    }
    if (decision.action === REDIRECT) {
      this.#sendRedirect(p.method, head, decision.route, host, path, decision.location, started);
      return;
    }
    const route = decision.route;
    this.#bodyBytes = 0;
    this.#bodyLimit = decision.shaped === null ? -1 : decision.shaped.maxBodySize;
    if (!this.bodyComplete) {
      // The body stays with the client until a backend connection is ready (so that a refused
      // connect can fail over with the body intact).
      this.#pause();
      if (p.expectContinue && p.minor === 1) this.socket.write(CONTINUE);
    }
    const exchange = new Exchange(this, ctx, p.method, head, route, host, path, started, upstreamRequestHead(p.method, decision.upstreamPath, head.headers, p.chunked), decision.shaped);
    this.#exchange = exchange;
    exchange.start();
  }

  poolFor(backend: Backend): UpstreamPool {
    return this.server.poolFor(backend);
  }

  get writePending(): boolean {
    return this.socket.writableLength > 0;
  }

  /** Forwards the body bytes buffered so far to the exchange's new upstream connection, and reads on. */
  sendBody(): void {
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
      const decoder = this.#decoder!;
      const r = decoder.feed(chunk, 0, len, null);
      if (r === INVALID) {
        this.#badBody(decoder.error);
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
      if (this.#bodyLimit >= 0) {
        this.#bodyBytes = this.#chunked ? this.#decoder!.dataBytes : this.#bodyBytes + end;
        if (this.#bodyBytes > this.#bodyLimit) {
          this.#exchange!.bodyTooLarge();
          return;
        }
      }
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
  resumeBody(): void {
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

  respond(res: ParsedResponse, requestId: string, hsts: string | null, edits: ResponseEdits | null): boolean {
    let passChunks = true;
    let chunked = false;
    this.#closeAfter = this.clientClose || this.server.draining || !this.bodyComplete;
    if (edits !== null && edits.reframe) {
      // A re-encoded body of unknown length: chunked by us, or delimited by the close for HTTP/1.0.
      passChunks = false;
      if (this.#minor === 0) {
        this.#closeAfter = true;
      } else {
        chunked = true;
        this.#ownChunks = true;
      }
    } else if (res.framing === CHUNKED) {
      // An HTTP/1.0 client cannot take chunked: it gets the data, delimited by the close.
      if (this.#minor === 0) {
        passChunks = false;
        this.#closeAfter = true;
      } else {
        chunked = true;
      }
    } else if (res.framing === UNTIL_CLOSE) {
      this.#closeAfter = true;
    }
    const connection = this.#closeAfter ? 'close' : this.#minor === 0 ? 'keep-alive' : null;
    // Written with the first body bytes, in one write when they are few.
    const { head, length } = clientResponseHead(res, requestId, chunked, connection, hsts, edits);
    this.#pendingHead = head.subarray(0, length);
    return passChunks;
  }

  write(data: Buffer): boolean {
    this.lastActivity = Date.now();
    if (this.#ownChunks) return this.#writeChunk(data);
    const head = this.#pendingHead;
    if (head === null) return this.socket.write(data);
    this.#pendingHead = null;
    if (head.length + data.length <= COALESCE_MAX) {
      // Small: one copy into Buffer's shared pool, one write.
      const out = Buffer.allocUnsafe(head.length + data.length);
      head.copy(out, 0);
      data.copy(out, head.length);
      return this.socket.write(out);
    }
    // Larger: one writev, no copy (a fresh buffer that size would be external memory for the GC).
    const socket = this.socket;
    socket.cork();
    socket.write(head);
    const ok = socket.write(data);
    socket.uncork();
    return ok;
  }

  #writeChunk(data: Buffer): boolean {
    if (data.length === 0) return !this.socket.writableNeedDrain;
    const socket = this.socket;
    socket.cork();
    this.#flushHead();
    socket.write(`${data.length.toString(16)}\r\n`, 'latin1');
    socket.write(data);
    const ok = socket.write(CRLF);
    socket.uncork();
    return ok;
  }

  #flushHead(): void {
    const head = this.#pendingHead;
    if (head !== null) {
      this.#pendingHead = null;
      this.socket.write(head);
    }
  }

  end(): void {
    this.#flushHead();
    if (this.#ownChunks) {
      this.#ownChunks = false;
      this.socket.write(LAST_CHUNK, 'latin1');
    }
    this.#exchangeDone(this.#closeAfter);
  }

  cut(): void {
    this.#ownChunks = false;
    this.#flushHead();
    this.#exchange = null;
    this.destroy();
  }

  fail(status: number, requestId: string, hsts: string | null): void {
    this.#exchangeDone(this.#writeError(status, requestId, this.#exchange?.method ?? 'GET', hsts));
  }

  /** Called once a response is complete (proxied, or the router's own). */
  #exchangeDone(close: boolean): void {
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
   * Writes a response of the router's own (an error, a redirect, an ACME answer); returns whether the
   * connection closes after it (an unread body, a framing-level refusal, the client's or our close).
   */
  #writeLocal(status: number, requestId: string, method: string, body: string, contentType: string, fields: string, malformed = false): boolean {
    const close = malformed || !this.bodyComplete || this.clientClose || this.server.draining;
    const connection = close ? 'connection: close\r\n' : this.#minor === 0 ? 'connection: keep-alive\r\n' : '';
    // A refusal closes the connection, and its request's method may not be what it says: the body goes anyway.
    const bodiless = method === 'HEAD' && !malformed;
    this.socket.write(`HTTP/1.1 ${status} ${statusText[status] ?? 'Error'}\r\ncontent-type: ${contentType}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${fields}x-request-id: ${requestId}\r\n${connection}\r\n${bodiless ? '' : body}`, 'latin1');
    return close;
  }

  /** A route middleware's or ACME's answer; returns whether the connection closes after it. */
  #writeAnswer(answer: LocalAnswer, requestId: string, method: string): boolean {
    let fields = '';
    for (let i = 0; i < answer.fields.length; i += 2) fields += `${answer.fields[i]}: ${answer.fields[i + 1]}\r\n`;
    if (answer.body !== '') return this.#writeLocal(answer.status, requestId, method, answer.body, 'text/plain; charset=utf-8', fields);
    // No body (a 204): neither Content-Type nor Content-Length (RFC 9110 §8.6).
    const close = !this.bodyComplete || this.clientClose || this.server.draining;
    const connection = close ? 'connection: close\r\n' : this.#minor === 0 ? 'connection: keep-alive\r\n' : '';
    this.socket.write(`HTTP/1.1 ${answer.status} ${statusText[answer.status] ?? 'Error'}\r\n${fields}x-request-id: ${requestId}\r\n${connection}\r\n`, 'latin1');
    return close;
  }

  #writeError(status: number, requestId: string, method: string, hsts: string | null = null): boolean {
    const sts = hsts === null ? '' : `strict-transport-security: ${hsts}\r\n`;
    return this.#writeLocal(status, requestId, method, `${status} ${statusText[status] ?? 'Error'}\n`, 'text/plain; charset=utf-8', `cache-control: no-store\r\n${sts}`, status === 400 || status === 501 || status === 505);
  }

  /** A 308 to the same URL on HTTPS. */
  #sendRedirect(method: string, head: RequestHead, route: Route, host: string, path: string, location: string, started: number): void {
    const close = this.#writeLocal(308, head.requestId, method, `308 Permanent Redirect: ${location}\n`, 'text/plain; charset=utf-8', `location: ${location}\r\n`);
    recordRedirect(this.server.ctx, route, started, method, host, path, head, location);
    this.#exchangeDone(close);
  }

  #sendError(method: string, head: RequestHead, status: number, reason: string, started: number, host: string, path: string): void {
    const requestId = head.requestId;
    const close = this.#writeError(status, requestId, method);
    recordUnrouted(this.server.ctx, started, method, host, path, status, head, reason);
    this.#exchangeDone(close);
  }

  /** Refuses a malformed request and closes: nothing of it, or after it, reaches a backend. */
  refuse(status: number, reason: string): void {
    if (this.#state === CLOSED) return;
    this.server.ctx.metrics.countUnrouted(status);
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
