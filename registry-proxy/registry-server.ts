// The registry's HTTP server (node:http). It routes, runs one handler per
// request, and is the one place where anything a handler throws becomes the
// spec's error response: a client never sees a stack trace, and no input can
// crash the process. Bodies stream through handlers with backpressure; nothing
// buffers a blob.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.ts';
import { listenOn, type ListenAddress } from '../common/listen-address.ts';
import { sendError } from './http-exchange.ts';
import type { AccessGate } from './auth/access-gate.ts';
import type { RegistryContext } from './registry-context.ts';
import { RegistryError, registryErrorFrom } from './registry-errors.ts';
import { matchRoute } from './registry-routes.ts';

export interface RegistryServerOptions {
  readonly accessLog: boolean;
  /** Idle time allowed on a connection, including mid-body (a slow push is fine; a silent one is not). */
  readonly idleTimeout: number;
  /** Lets a request in (with what it may do) or throws the 401/403 to answer. */
  readonly gate: AccessGate;
  /** Refuse every method but GET and HEAD with 405 UNSUPPORTED (a pull-through cache, as distribution's). */
  readonly readOnly?: boolean;
  /** Told of every request's start and end (metrics). */
  readonly observer?: RequestObserver;
}

export interface RequestObserver {
  started(req: IncomingMessage): void;
  ended(req: IncomingMessage, res: ServerResponse, seconds: number): void;
}

export class RegistryServer {
  readonly #ctx: RegistryContext;
  readonly #log: Logger;
  readonly #options: RegistryServerOptions;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #inflight = 0;
  #drained: (() => void) | null = null;
  #closed = false;

  constructor(ctx: RegistryContext, options: RegistryServerOptions) {
    this.#ctx = ctx;
    this.#log = ctx.log.child({ component: 'registry' });
    this.#options = options;
    // requestTimeout 0: a 1 GiB push legitimately takes minutes; the idle timeout bounds a stalled one.
    this.#server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 75_000 }, (req, res) => {
      void this.#handle(req, res);
    });
    this.#server.setTimeout(options.idleTimeout);
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server.on('clientError', (err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
      this.#log.debug({ err: err.message }, 'malformed request');
    });
  }

  listen(address: ListenAddress): Promise<ListenAddress> {
    return listenOn(this.#server, address);
  }

  /** Stops accepting, lets in-flight requests finish within `drainMs`, then cuts what is left. */
  async close(drainMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    if (this.#inflight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => { this.#drained = resolve; }),
        new Promise<void>((resolve) => setTimeout(resolve, drainMs).unref()),
      ]);
    }
    this.destroy();
    await closed;
  }

  /** Cuts every connection now. */
  destroy(): void {
    this.#closed = true;
    this.#server.close();
    for (const socket of this.#sockets) socket.destroy();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const controller = new AbortController();
    this.#inflight++;
    this.#options.observer?.started(req);
    res.once('close', () => {
      this.#options.observer?.ended(req, res, (performance.now() - started) / 1000);
      if (!res.writableFinished) controller.abort();
      this.#inflight--;
      if (this.#inflight === 0) this.#drained?.();
      if (this.#options.accessLog) {
        this.#log.info({ method: req.method, path: req.url?.slice(0, 300), status: res.statusCode, ms: Math.round(performance.now() - started), complete: res.writableFinished }, 'request');
      }
    });
    // A client that goes away mid-body surfaces as an error of the body iterator in the handler.
    req.on('error', () => {});
    try {
      if (this.#closed) res.setHeader('Connection', 'close');
      // The path is matched as sent: URL parsing would resolve `..` and `//` and
      // serve another repository than the one named, instead of refusing the name.
      const target = req.url ?? '/';
      const queryAt = target.indexOf('?');
      const pathname = queryAt === -1 ? target : target.slice(0, queryAt);
      const url = new URL(`http://registry.invalid/${queryAt === -1 ? '' : target.slice(queryAt)}`);
      const route = matchRoute(req.method ?? 'GET', pathname);
      const access = await this.#options.gate.admit(req, route);
      if (this.#options.readOnly && req.method !== 'GET' && req.method !== 'HEAD') {
        throw new RegistryError('UNSUPPORTED', 'this registry is a pull-through cache: it accepts no pushes or deletes', { headers: { Allow: 'GET, HEAD' } });
      }
      await route.handler(this.#ctx, { req, res, url, name: route.name, params: route.params, signal: controller.signal, access });
    } catch (err) {
      if (controller.signal.aborted) {
        this.#log.debug({ path: req.url?.slice(0, 300), err: (err as Error).message }, 'client went away');
        res.destroy();
        return;
      }
      const { error, fault } = registryErrorFrom(err);
      if (fault) this.#log.error({ method: req.method, path: req.url?.slice(0, 300), code: error.code, err: describe(err) }, 'request failed');
      // An unread body would have to be drained before the next request; closing is cheaper.
      if (!req.readableEnded) res.setHeader('Connection', 'close');
      sendError(req, res, error);
    }
  }
}

function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as Error | undefined, depth = 0; e && depth < 3; e = e.cause as Error | undefined, depth++) parts.push(e.message ?? String(e));
  return parts.join(' <- ');
}
