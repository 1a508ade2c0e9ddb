// The HTTP/1.1 listener of one worker: net.Server with SO_REUSEPORT for plain
// HTTP, one ClientConnection per socket, the upstream pools (one per Backend,
// shared with the HTTP/2 streams of the same listener), and one sweep timer for
// every deadline (slow heads, idle keep-alive, client inactivity, upstream
// response and body timeouts, idle upstream connections). The HTTPS listener
// hands it the TLS connections that chose HTTP/1.1 (adopt), without a listener
// of its own.
import { listenReusingPort, type ListenAddress } from '../../../common/listen-address.ts';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../common/logger.ts';
import type { Backend } from '../../table/backend.ts';
import type { ProxyContext } from '../../core/proxy-context.ts';
import type { UpgradeHandler } from '../websocket/websocket-proxy.ts';
import { ClientConnection, type ServerSide } from './connection.ts';
import { UpstreamPool, type UpstreamPoolOptions } from '../../core/upstream-pool.ts';

/** What a client-facing listener is configured with. */
export interface ListenerOptions {
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

export interface Http1ServerOptions extends ListenerOptions {
  readonly upstream: UpstreamPoolOptions;
}

/** Counts a listener's open connections into the worker's metrics (a WebSocket's until it closes). */
export function countConnections(ctx: ProxyContext, socket: Socket): void {
  const counts = ctx.metrics.connections;
  const listener = ctx.proto;
  counts[listener]++;
  // 'on', not 'once': close comes once anyway, and once() wraps every listener in two more objects.
  socket.on('close', () => counts[listener]--);
}

export class Http1Server implements ServerSide {
  readonly ctx: ProxyContext;
  readonly maxHeaderSize: number;
  readonly clientHeaderTimeout: number;
  readonly clientIdleTimeout: number;
  readonly keepAliveTimeout: number;
  draining = false;
  readonly upgrade: UpgradeHandler | null;
  /** Its own listener (plain HTTP); null when another listener hands it connections (adopt). */
  #server: Server | null = null;
  readonly #log: Logger;
  readonly #options: Http1ServerOptions;
  readonly #connections = new Set<ClientConnection>();
  readonly #pools = new Map<Backend, UpstreamPool>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(ctx: ProxyContext, options: Http1ServerOptions, log: Logger, upgrade: UpgradeHandler | null = null) {
    this.ctx = ctx;
    this.upgrade = upgrade;
    this.#log = log;
    this.#options = options;
    this.maxHeaderSize = options.maxHeaderSize;
    this.clientHeaderTimeout = options.clientHeaderTimeout;
    this.clientIdleTimeout = options.clientIdleTimeout;
    this.keepAliveTimeout = options.keepAliveTimeout;
    const interval = Math.max(20, Math.min(100, this.clientHeaderTimeout / 4));
    this.#sweeper = setInterval(() => this.#sweep(), interval);
    this.#sweeper.unref();
  }

  /** Serves a connection another listener accepted (HTTP/1.1 over TLS); that listener counts it. */
  adopt(socket: Socket): void {
    this.#connections.add(new ClientConnection(socket, this));
  }

  poolFor(backend: Backend): UpstreamPool {
    let pool = this.#pools.get(backend);
    if (pool === undefined) {
      // Health and ejection live on Backend; the pool only holds connections.
      pool = new UpstreamPool(backend, this.#options.upstream);
      this.#pools.set(backend, pool);
    }
    return pool;
  }

  forget(conn: ClientConnection): void {
    this.#connections.delete(conn);
  }

  listen(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
      countConnections(this.ctx, socket);
      this.#connections.add(new ClientConnection(socket, this));
    });
    server.on('error', (err) => this.#log.error({ err: err.message }, 'proxy listener error'));
    this.#server = server;
    return listenReusingPort(server, this.#options.address);
  }

  #sweep(): void {
    const now = Date.now();
    for (const conn of this.#connections) conn.check(now);
    for (const [backend, pool] of this.#pools) {
      pool.sweep(now);
      // A backend no instance refers to any more: drop its pool once its connections are gone.
      if (backend.refs === 0 && pool.open === 0) this.#pools.delete(backend);
    }
  }

  /** From now on every response closes its connection (Connection: close); the listener still accepts. */
  markDraining(): void {
    this.draining = true;
  }

  /** Stops accepting, lets in-flight requests finish (at most `timeout` ms), then closes every connection. */
  async close(timeout: number): Promise<void> {
    this.draining = true;
    const server = this.#server;
    const closed = server?.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    this.#closeIdle();
    const deadline = Date.now() + timeout;
    while (this.ctx.inFlight > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      this.#closeIdle();
    }
    if (this.ctx.inFlight > 0) this.#log.warn({ inFlight: this.ctx.inFlight }, 'drain timeout; closing remaining connections');
    for (const conn of this.#connections) conn.destroy();
    this.#connections.clear();
    clearInterval(this.#sweeper);
    for (const pool of this.#pools.values()) pool.close();
    await closed;
  }

  #closeIdle(): void {
    for (const conn of this.#connections) if (conn.idle) conn.destroy();
  }
}
