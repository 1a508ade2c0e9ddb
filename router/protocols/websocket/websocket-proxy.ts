// WebSockets (HTTP/1.1 Upgrade) on both listeners. The router owns what is
// routing: the route, the header rules (forward-headers.ts), the backend
// (the route's balancer, like any request), the TCP connect with failover to the
// next backend, the handshake timeout and the 502/503/504 answers. http-proxy-3
// does the rest over that connected socket: the upgrade exchange, relaying a
// refused upgrade's response, piping both ways and tearing down both sockets.
//
// A tunnel belongs to its backend (Backend.websockets), not to the table: route
// changes never touch it; when its backend leaves the table it drains
// (backend-registry.ts) and is finally ended with a Close frame (1001).
// Never: leave a socket without an error handler, or an upstream socket open
// after its client socket closed.
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createRequire } from 'node:module';
import type { ProxyServer, ServerOptions } from 'http-proxy-3';
import type { ProxyContext } from '../../core/proxy-context.ts';
import { ANSWER, AWAIT, REDIRECT, REFUSE, routeRequest, type SettledDecision } from '../../core/route-request.ts';
import { GO_AWAY_GRACE, WebSocketTunnel, writeRaw, type TunnelOwner } from './websocket-tunnel.ts';

/** Takes a WebSocket upgrade request and its socket (detached from the HTTP/1.1 engine). */
export type UpgradeHandler = (ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface WebSocketProxyOptions {
  /** Upstream TCP connect timeout, ms. */
  readonly connectTimeout: number;
}

/**
 * http-proxy-3, loaded on the first WebSocket: it brings node:https, node:http2 and node:tls, which a
 * worker serving plain HTTP needs for nothing else (~4.5 MiB of its RSS, measured).
 */
function loadHttpProxy(): typeof import('http-proxy-3') {
  return createRequire(import.meta.url)('http-proxy-3') as typeof import('http-proxy-3');
}

export class WebSocketProxy implements TunnelOwner {
  #proxy: ProxyServer | null = null;
  readonly #options: WebSocketProxyOptions;
  readonly #tunnels = new Set<WebSocketTunnel>();
  /** Upstream socket → its tunnel, for http-proxy-3's 'open' event. */
  readonly #byUpstream = new WeakMap<Duplex, WebSocketTunnel>();

  constructor(options: WebSocketProxyOptions) {
    this.#options = options;
  }

  handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const started = performance.now();
    const decision = routeRequest(ctx, req.method ?? 'GET', req.url ?? '/', req.rawHeaders, req.httpVersionMajor, req.httpVersionMinor, req.socket.remoteAddress ?? '', null);
    if (decision.action !== AWAIT) {
      this.#act(ctx, req, socket, head, decision, started);
      return;
    }
    // A password check runs: the socket is not read (what the client sends early stays in it) until it settles.
    socket.pause();
    void decision.settle.then((settled) => {
      if (socket.destroyed) return;
      socket.resume();
      this.#act(ctx, req, socket, head, settled, started);
    });
  }

  #act(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer, decision: SettledDecision, started: number): void {
    const requestId = decision.head.requestId;
    if (req.method !== 'GET' && decision.action !== REFUSE) {
      ctx.metrics.countUnrouted(400);
      writeRaw(socket, 400, requestId);
      return;
    }
    switch (decision.action) {
      case ANSWER: {
        const answer = decision.answer;
        // An ACME challenge or a CORS preflight is never a WebSocket: nothing to upgrade to.
        if (decision.route === null || answer.status < 300) {
          ctx.metrics.countUnrouted(400);
          writeRaw(socket, 400, requestId);
        } else {
          decision.route.pool.metrics.count(null, answer.status);
          const extra: string[] = [];
          for (let i = 0; i < answer.fields.length; i += 2) if (answer.fields[i] !== 'cache-control') extra.push(answer.fields[i], answer.fields[i + 1]);
          writeRaw(socket, answer.status, requestId, extra);
        }
        return;
      }
      case REFUSE:
        ctx.metrics.countUnrouted(decision.status);
        writeRaw(socket, decision.status, requestId);
        return;
      case REDIRECT:
        decision.route.pool.metrics.count(null, 308);
        writeRaw(socket, 308, requestId, ['Location', decision.location]);
        return;
    }
    const tunnel = new WebSocketTunnel(this, ctx, req, socket, head, decision.head, decision.route, decision.host, decision.path, decision.upstreamPath, decision.shaped, started);
    this.#tunnels.add(tunnel);
    tunnel.connect(null, 0);
  }

  /** Ends every tunnel cleanly (1001); resolves when all are closed or after a grace period. */
  async close(reason: string): Promise<void> {
    for (const tunnel of this.#tunnels) tunnel.goAway(reason);
    const deadline = Date.now() + GO_AWAY_GRACE + 500;
    while (this.#tunnels.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** For its tunnels (TunnelOwner). */
  get proxy(): ProxyServer {
    if (this.#proxy !== null) return this.#proxy;
    const proxy = loadHttpProxy().createProxyServer({ xfwd: false, prependPath: false });
    // Client socket errors are re-emitted here; the tunnel's own handlers deal with them.
    proxy.on('error', () => {});
    proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, _socket: Duplex, options: ServerOptions) => {
      (options as ServerOptions & { tunnel?: WebSocketTunnel }).tunnel?.attach(proxyReq);
    });
    // Emitted once http-proxy-3 piped both ways: frame tracking goes after its pipe.
    proxy.on('open', (upstream: Duplex) => this.#byUpstream.get(upstream)?.opened(upstream));
    this.#proxy = proxy;
    return proxy;
  }

  get connectTimeout(): number {
    return this.#options.connectTimeout;
  }

  track(upstream: Duplex, tunnel: WebSocketTunnel): void {
    this.#byUpstream.set(upstream, tunnel);
  }

  forget(tunnel: WebSocketTunnel): void {
    this.#tunnels.delete(tunnel);
  }
}
