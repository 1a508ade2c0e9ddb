// The raw-socket HTTP/1.1 engine (--engine raw): net.Server with SO_REUSEPORT
// for plain HTTP, one ClientConnection per socket, one UpstreamPool per
// Backend, and one sweep timer for every deadline (slow heads, idle keep-alive,
// client inactivity, upstream response and body timeouts, idle upstream
// connections). Same listen/close interface as ProxyServer. The HTTPS listener
// hands it the TLS connections that chose HTTP/1.1 (adopt), without a listener
// of its own.
import { listenReusingPort } from '../../common/listen-address.ts';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger.ts';
import type { Backend, BackendOptions } from '../backend.ts';
import type { ProxyContext } from '../proxy-exchange.ts';
import type { ProxyServerOptions, UpgradeHandler } from '../proxy-server.ts';
import { ClientConnection, type ServerSide } from './connection.ts';
import { UpstreamPool } from './upstream-pool.ts';

export interface RawProxyServerOptions extends ProxyServerOptions {
  /** Upstream connection settings (the same flags the node engine's undici pools use). */
  readonly upstream: Pick<BackendOptions, 'connectTimeout' | 'keepAliveTimeout' | 'maxConnections'>;
}

export class RawProxyServer implements ServerSide {
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
  readonly #options: RawProxyServerOptions;
  readonly #connections = new Set<ClientConnection>();
  readonly #pools = new Map<Backend, UpstreamPool>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(ctx: ProxyContext, options: RawProxyServerOptions, log: Logger, upgrade: UpgradeHandler | null = null) {
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
      const { connectTimeout, keepAliveTimeout, maxConnections } = this.#options.upstream;
      // Health and ejection live on Backend; the pool only needs the connection settings.
      pool = new UpstreamPool(backend, { connectTimeout, keepAliveTimeout, maxConnections, maxFails: 0, ejectBase: 0, ejectMax: 0 });
      this.#pools.set(backend, pool);
    }
    return pool;
  }

  forget(conn: ClientConnection): void {
    this.#connections.delete(conn);
  }

  listen(): Promise<void> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket: Socket) => {
      // Open client connections per listener, for /metrics (a WebSocket's until it closes).
      const counts = this.ctx.metrics.connections;
      const listener = this.ctx.proto;
      counts[listener]++;
      socket.once('close', () => counts[listener]--);
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
