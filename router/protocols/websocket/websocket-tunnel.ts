// One WebSocket through the router, from the upgrade request until both
// sockets are closed: the TCP connect with failover, the handshake timeout, the
// 502/503/504 answers, the hand-over to http-proxy-3 (which makes the upgrade
// request on the connected socket, relays a refused upgrade and pipes both
// ways), the edits of the backend's answer before it is relayed (the route's
// responseHeaders and the sticky pin, the same core rules as any response),
// the bookkeeping (backend, metrics, access log) and the clean close.
// Never: leave the upstream socket open once the client socket is closed, or
// let an edit touch the handshake's own fields.
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Agent } from '../../core/node-http.ts';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ProxyServer, ServerOptions } from 'http-proxy-3';
import type { Backend, DrainableConnection } from '../../table/backend.ts';
import type { RequestHead } from '../../core/forward-headers.ts';
import type { ProxyContext } from '../../core/proxy-context.ts';
import type { Route } from '../../table/route-table.ts';
import type { ServicePool } from '../../table/service-pool.ts';
import { applyToHeaderMap } from '../../core/response-edits.ts';
import { pinnedBackend, withStickyPin } from '../../core/sticky-session.ts';
import type { ShapedRequest } from '../../middleware/route-middlewares.ts';
import { classifyUpstreamError, statusText } from '../../core/upstream-errors.ts';
import { closeFrame, FrameBoundaryTracker, GOING_AWAY } from './websocket-frames.ts';

/** What a tunnel needs of the WebSocket proxy that made it. */
export interface TunnelOwner {
  readonly proxy: ProxyServer;
  readonly connectTimeout: number;
  /** Maps the upstream socket to its tunnel, for http-proxy-3's 'open' event. */
  track(upstream: Duplex, tunnel: WebSocketTunnel): void;
  forget(tunnel: WebSocketTunnel): void;
}

/** How long a tunnel told to go away may take to reach a frame boundary and close. */
export const GO_AWAY_GRACE = 2000;
/** Bytes a client may send before its upgrade is accepted (a client must wait for the 101). */
const MAX_EARLY_DATA = 64 * 1024;

/** Hands http-proxy-3's upgrade request the socket the router already connected (and chose). */
class ConnectedSocketAgent extends Agent {
  readonly #socket: Socket;

  constructor(socket: Socket) {
    super({ keepAlive: false });
    this.#socket = socket;
  }

  override createConnection(): Duplex {
    return this.#socket;
  }
}

/** One WebSocket through the router: from the upgrade request until both sockets are closed. */
export class WebSocketTunnel implements DrainableConnection {
  readonly #owner: TunnelOwner;
  readonly #ctx: ProxyContext;
  readonly #req: IncomingMessage;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #requestHead: RequestHead;
  readonly #route: Route;
  /** The service serving this upgrade (the route's, its split's choice, or the sticky pin's). */
  readonly #pool: ServicePool;
  /** The backend a sticky cookie pins, tried first; the answer of any other backend pins the client anew. */
  readonly #pinned: Backend | null;
  /** The request's part of the route's middlewares (their edits of the answer), or null. */
  readonly #shaped: ShapedRequest | null;
  readonly #host: string;
  readonly #path: string;
  /** The path the backend sees (the route's rewrite of #path). */
  readonly #upstreamPath: string;
  readonly #started: number;
  #backend: Backend | null = null;
  #upstream: Socket | null = null;
  #proxyReq: ClientRequest | null = null;
  #responseTimer: NodeJS.Timeout | undefined;
  #status = 0;
  #attempts = 0;
  #upgraded = false;
  #tracker: FrameBoundaryTracker | null = null;
  #goingAway = false;
  #reason = '';
  #error: string | undefined;
  #closed = false;
  /** What the client sent before the backend accepted (bounded by MAX_EARLY_DATA). */
  readonly #early: Buffer[] = [];
  #earlyBytes = 0;

  constructor(owner: TunnelOwner, ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, requestHead: RequestHead, route: Route, host: string, path: string, upstreamPath: string, shaped: ShapedRequest | null, started: number) {
    this.#owner = owner;
    this.#ctx = ctx;
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#requestHead = requestHead;
    this.#route = route;
    const pin = route.sticky === null ? null : pinnedBackend(route, requestHead.headers, ctx.table.stickyKey, Date.now());
    this.#pool = pin !== null ? pin.pool : route.split === null ? route.pool : route.split.next();
    this.#pinned = pin === null ? null : pin.backend;
    this.#host = host;
    this.#path = path;
    this.#upstreamPath = upstreamPath;
    this.#shaped = shaped;
    this.#started = started;
    socket.once('close', () => this.#onClientClose());
    // Until the backend accepts, read the client socket ourselves: a client that leaves (FIN) is
    // noticed at once, and what it sent early is kept for the backend (put back on upgrade).
    socket.on('data', this.#holdEarlyData);
    socket.once('end', this.#onEarlyEnd);
  }

  readonly #holdEarlyData = (chunk: Buffer): void => {
    this.#early.push(chunk);
    this.#earlyBytes += chunk.length;
    if (this.#earlyBytes > MAX_EARLY_DATA) this.#socket.destroy();
  };

  readonly #onEarlyEnd = (): void => {
    if (!this.#upgraded) this.#socket.destroy();
  };

  /** Hands the client socket over to http-proxy-3's pipe, with anything it sent early. */
  #releaseClientSocket(): void {
    this.#socket.off('data', this.#holdEarlyData);
    this.#socket.off('end', this.#onEarlyEnd);
    this.#socket.pause();
    if (this.#early.length > 0) this.#socket.unshift(Buffer.concat(this.#early));
    this.#early.length = 0;
  }

  /** Connects to the next backend: a refused or timed-out connect goes to another one, like any request. */
  connect(tried: Backend[] | null, failures: number): void {
    if (this.#closed) return;
    // The pin is tried first; a pinned backend that refuses the connection is replaced like any other.
    const backend = this.#attempts === 0 && this.#pinned !== null ? this.#pinned : this.#route.select(this.#pool, Date.now(), tried);
    if (backend === null) {
      this.#refuse(failures === 0 ? 503 : 502, failures === 0 ? 'no live backend' : 'no backend left to try');
      return;
    }
    this.#attempts++;
    this.#backend = backend;
    backend.active++;
    const upstream = connect({ host: backend.host, port: backend.port, noDelay: true });
    this.#upstream = upstream;
    upstream.setTimeout(this.#owner.connectTimeout, () => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'UND_ERR_CONNECT_TIMEOUT' })));
    const onConnectError = (err: Error) => {
      backend.active--;
      this.#backend = null;
      this.#upstream = null;
      if (this.#closed) return;
      const failure = classifyUpstreamError(err);
      this.#recordFailure(backend, failure.reason);
      (tried ??= []).push(backend);
      if (this.#attempts < Math.min(this.#ctx.maxAttempts, 5) && this.#attempts < this.#pool.size) this.connect(tried, failures + 1);
      else this.#refuse(failure.status, failure.reason);
    };
    upstream.once('error', onConnectError);
    upstream.once('connect', () => {
      upstream.off('error', onConnectError);
      // From here http-proxy-3's handlers report errors; this one only keeps a late error from crashing.
      upstream.on('error', () => {});
      upstream.setTimeout(0);
      if (this.#closed) {
        upstream.destroy();
        return;
      }
      this.#proxyUpgrade(backend, upstream);
    });
  }

  #proxyUpgrade(backend: Backend, upstream: Socket): void {
    const req = this.#req as IncomingMessage & { headers: Record<string, string | string[]> };
    req.url = this.#upstreamPath;
    req.headers = upgradeHeaders(this.#requestHead.headers, req.headers.upgrade);
    this.#owner.track(upstream, this);
    const options = { target: `http://${backend.address}`, agent: new ConnectedSocketAgent(upstream), tunnel: this } as ServerOptions;
    this.#owner.proxy.ws(req, this.#socket as Socket, this.#head, options, (err: Error) => this.#onProxyError(err));
  }

  /** http-proxy-3 made its upgrade request on our socket. */
  attach(proxyReq: ClientRequest): void {
    this.#proxyReq = proxyReq;
    const timeout = this.#route.responseTimeout ?? this.#ctx.responseTimeout;
    this.#responseTimer = setTimeout(() => {
      proxyReq.destroy(Object.assign(new Error('no answer to the upgrade'), { code: 'UND_ERR_HEADERS_TIMEOUT' }));
    }, timeout);
    // Prepended: these run before http-proxy-3's own listeners write the answer to the client.
    proxyReq.prependOnceListener('upgrade', (res: IncomingMessage) => {
      clearTimeout(this.#responseTimer);
      this.#editAnswer(res);
      this.#releaseClientSocket();
      this.#upgraded = true;
      this.#status = 101;
      const backend = this.#backend!;
      backend.recordSuccess();
      backend.websockets.add(this);
      this.#pool.metrics.count(backend, 101);
      this.#ctx.metrics.websockets++;
      this.#ctx.metrics.websocketsTotal++;
    });
    proxyReq.prependOnceListener('response', (res: IncomingMessage) => {
      // A refused upgrade: http-proxy-3 relays the answer and closes the client socket.
      clearTimeout(this.#responseTimer);
      this.#editAnswer(res);
      this.#status = res.statusCode ?? 502;
      this.#backend?.recordSuccess();
      this.#pool.metrics.count(this.#backend, this.#status);
    });
  }

  /**
   * The backend's answer, before http-proxy-3 relays it from `res.headers`: the route's
   * responseHeaders, and the sticky pin when this backend is not the client's pin already.
   */
  #editAnswer(res: IncomingMessage): void {
    const base = this.#shaped === null ? null : this.#shaped.upgradeEdits;
    const edits = withStickyPin(this.#route, this.#backend!, this.#pinned, this.#ctx.table.stickyKey, this.#ctx.proto === 'https', base);
    if (edits !== null) applyToHeaderMap(res.headers, edits, isHandshakeField);
  }

  /** Both directions are piped: follow frame boundaries of what the backend sends. */
  opened(upstream: Duplex): void {
    const tracker = new FrameBoundaryTracker();
    this.#tracker = tracker;
    upstream.on('data', (chunk: Buffer) => tracker.observe(chunk));
    // http-proxy-3 ends the client socket when the upstream closes; a client that never closes its
    // side (half-open) is cut after a grace period.
    upstream.once('close', () => {
      // Keep reading (and dropping) what the client still sends, its Close reply, so its FIN is seen.
      this.#socket.resume();
      setTimeout(() => this.#socket.destroy(), GO_AWAY_GRACE).unref();
    });
    if (this.#goingAway) this.#closeAtBoundary();
  }

  goAway(reason: string): void {
    if (this.#goingAway || this.#closed) return;
    this.#goingAway = true;
    this.#reason = reason;
    if (!this.#upgraded) {
      this.#socket.destroy();
      return;
    }
    setTimeout(() => {
      this.#socket.destroy();
      this.#upstream?.destroy();
    }, GO_AWAY_GRACE).unref();
    if (this.#tracker !== null) this.#closeAtBoundary();
  }

  #closeAtBoundary(): void {
    const tracker = this.#tracker!;
    const close = () => {
      const upstream = this.#upstream;
      if (upstream !== null) {
        upstream.unpipe(this.#socket as NodeJS.WritableStream);
        this.#socket.unpipe(upstream);
        upstream.end();
        upstream.resume();
      }
      // The client answers with its own Close frame; read and drop it, and see its end.
      this.#socket.resume();
      this.#socket.end(closeFrame(GOING_AWAY, this.#reason));
    };
    if (tracker.atBoundary) close();
    else tracker.onBoundary = close;
  }

  #onProxyError(err: Error): void {
    clearTimeout(this.#responseTimer);
    if (this.#upgraded || this.#status !== 0) return; // mid-stream: http-proxy-3 closes both sides
    const failure = classifyUpstreamError(err);
    if (this.#backend !== null) this.#recordFailure(this.#backend, failure.reason);
    this.#refuse(failure.status, failure.reason);
  }

  #recordFailure(backend: Backend, reason: string): void {
    if (backend.recordFailure(Date.now())) {
      this.#ctx.log.warn({ backend: backend.address, service: this.#pool.name, until: new Date(backend.ejectedUntil).toISOString(), err: reason }, 'backend ejected');
    }
  }

  #refuse(status: number, reason: string): void {
    if (this.#status !== 0) return;
    this.#status = status;
    this.#error = reason;
    this.#pool.metrics.count(null, status);
    writeRaw(this.#socket, status, this.#requestHead.requestId);
  }

  #onClientClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#responseTimer);
    this.#owner.forget(this);
    // Not yet upgraded: nothing may stay open towards the backend. Upgraded: http-proxy-3 ends the
    // upstream socket; a backend that never closes its side is cut after a grace period.
    if (!this.#upgraded) {
      this.#proxyReq?.destroy();
      this.#upstream?.destroy();
    } else {
      const upstream = this.#upstream;
      if (upstream !== null && !upstream.destroyed) setTimeout(() => upstream.destroy(), GO_AWAY_GRACE).unref();
    }
    const backend = this.#backend;
    if (backend !== null) {
      backend.active--;
      backend.websockets.delete(this);
    }
    if (this.#upgraded) this.#ctx.metrics.websockets--;
    this.#ctx.accessLog?.info({
      method: 'GET',
      host: this.#host,
      path: this.#path,
      status: this.#status || 499,
      websocket: true,
      ms: Math.round((performance.now() - this.#started) * 1000) / 1000,
      backend: backend?.address,
      service: this.#pool.name,
      attempts: this.#attempts,
      id: this.#requestHead.requestId,
      error: this.#error,
    });
  }
}

/**
 * Fields of the answer that belong to the protocol switch or the framing, which no edit may touch
 * (the hop-by-hop and framing names are refused in rules already; Sec-WebSocket-* are not, and
 * removing Sec-WebSocket-Accept or -Extensions from a 101 breaks or corrupts the WebSocket).
 */
function isHandshakeField(name: string): boolean {
  return name === 'connection' || name === 'upgrade' || name === 'content-length' || name === 'transfer-encoding' || name.startsWith('sec-websocket-');
}

/** The upstream's upgrade request headers: the forwarded ones (hop-by-hop dropped), plus the upgrade itself. */
function upgradeHeaders(flat: readonly string[], upgrade: string | string[] | undefined): Record<string, string | string[]> {
  const headers: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    const existing = headers[name];
    headers[name] = existing === undefined ? flat[i + 1] : Array.isArray(existing) ? [...existing, flat[i + 1]] : [existing, flat[i + 1]];
  }
  headers.connection = 'Upgrade';
  headers.upgrade = typeof upgrade === 'string' ? upgrade : 'websocket';
  return headers;
}

/** A complete HTTP/1.1 response on a socket taken from node:http, then the connection closes. */
export function writeRaw(socket: Duplex, status: number, requestId: string, extra: readonly string[] = []): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const text = statusText[status] ?? (status === 308 ? 'Permanent Redirect' : 'Error');
  const body = `${status} ${text}\n`;
  let head = `HTTP/1.1 ${status} ${text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\nCache-Control: no-store\r\nX-Request-Id: ${requestId}\r\nConnection: close\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  socket.end(`${head}\r\n${body}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}
