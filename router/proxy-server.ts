// The client-facing HTTP/1.1 listener of one worker: strict parsing (llhttp in
// strict mode plus forward-headers' checks), bounded heads, slow-client
// timeouts, malformed requests refused without reaching a backend, and a
// graceful close that drains in-flight requests. WebSocket upgrades go to the
// WebSocket proxy; other Upgrade requests are served as plain HTTP.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../common/logger.ts';
import { listenReusingPort, type ListenAddress } from '../common/listen-address.ts';
import { handleRequest, type ProxyContext } from './proxy-exchange.ts';
import { statusText } from './upstream-errors.ts';

export interface ProxyServerOptions {
  readonly address: ListenAddress;
  /** Largest request head accepted, bytes; larger gets 431. */
  readonly maxHeaderSize: number;
  /** Time a client has to send a complete request head, ms (slowloris guard); 408 after. */
  readonly clientHeaderTimeout: number;
  /** Inactivity allowed on a client connection while a request is open, ms. */
  readonly clientIdleTimeout: number;
  /** How long an idle client keep-alive connection is kept, ms. */
  readonly keepAliveTimeout: number;
}

/** Takes a WebSocket upgrade request and its socket (detached from node:http). */
export type UpgradeHandler = (ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** node:http's shouldUpgradeCallback: only WebSocket upgrades leave HTTP; `Upgrade: h2c` and others get a plain response. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** Counts a listener's open connections into the worker's metrics. */
export function countConnections(ctx: ProxyContext, socket: Socket): void {
  const counts = ctx.metrics.connections;
  const listener = ctx.proto;
  counts[listener]++;
  socket.once('close', () => counts[listener]--);
}

/**
 * node:http settings for a client-facing HTTP/1.1 listener, shared by the HTTP
 * and the HTTPS listener so that both stay exactly as strict.
 */
export function strictHttp1Options(options: Pick<ProxyServerOptions, 'maxHeaderSize' | 'clientHeaderTimeout' | 'keepAliveTimeout'>) {
  return {
    maxHeaderSize: options.maxHeaderSize,
    requireHostHeader: true,
    insecureHTTPParser: false,
    joinDuplicateHeaders: false,
    headersTimeout: options.clientHeaderTimeout,
    // Whole-request deadline off: a large upload on a slow link is fine while it moves (clientIdleTimeout).
    requestTimeout: 0,
    keepAliveTimeout: options.keepAliveTimeout,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, options.clientHeaderTimeout / 4)),
  };
}

export class ProxyServer {
  readonly #server: Server;
  readonly #ctx: ProxyContext;
  readonly #log: Logger;
  readonly #options: ProxyServerOptions;
  /** SIGTERM arrived: every response from now on closes its connection (a response already in flight keeps it; its next request gets the close). */
  #draining = false;

  constructor(ctx: ProxyContext, options: ProxyServerOptions, log: Logger, upgrade: UpgradeHandler | null = null) {
    this.#ctx = ctx;
    this.#log = log;
    this.#options = options;
    this.#server = createServer({
      ...strictHttp1Options(options),
      noDelay: true,
      shouldUpgradeCallback: (req) => upgrade !== null && isWebSocketUpgrade(req),
    }, (req, res) => {
      if (this.#draining) res.shouldKeepAlive = false;
      handleRequest(ctx, req, res);
    });
    this.#server.timeout = options.clientIdleTimeout;
    this.#server.on('connection', (socket: Socket) => countConnections(ctx, socket));
    if (upgrade !== null) this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrade(ctx, req, socket, head));
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => refuseMalformedRequest(ctx, err, socket));
    this.#server.on('error', (err) => this.#log.error({ err: err.message }, 'proxy listener error'));
  }

  listen(): Promise<void> {
    return listenReusingPort(this.#server, this.#options.address);
  }

  /** From now on every response closes its connection (Connection: close); the listener still accepts. */
  markDraining(): void {
    this.#draining = true;
  }

  /** Stops accepting, lets in-flight requests finish (at most `timeout` ms), then closes every connection. */
  async close(timeout: number): Promise<void> {
    this.markDraining();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    const deadline = Date.now() + timeout;
    while (this.#ctx.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.#server.closeIdleConnections();
    }
    if (this.#ctx.inFlight > 0) this.#log.warn({ inFlight: this.#ctx.inFlight }, 'drain timeout; closing remaining connections');
    this.#server.closeAllConnections();
    await closed;
  }
}

/**
 * A request llhttp refused (malformed, oversized head, head timeout) gets one short error response
 * and the connection closes; nothing reaches a backend. Shared by the HTTP and HTTPS listeners.
 */
export function refuseMalformedRequest(ctx: ProxyContext, err: NodeJS.ErrnoException, socket: Socket): void {
  const code = err.code ?? 'ERR';
  if (code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  // A response already started on this connection (a refusal, or a proxied response) gets no second
  // status line after it: close once it is complete, or cut it short (node:http's default does the same).
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current?.headersSent) {
    if (current.writableEnded) {
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    } else {
      socket.destroy();
    }
    return;
  }
  const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  ctx.metrics.countUnrouted(status);
  ctx.accessLog?.info({ status, error: code, remote: socket.remoteAddress }, 'refused malformed request');
  const body = `${status} ${statusText[status]}\n`;
  socket.end(`HTTP/1.1 ${status} ${statusText[status]}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
  socket.destroySoon();
  setTimeout(() => socket.destroy(), 1000).unref();
}
