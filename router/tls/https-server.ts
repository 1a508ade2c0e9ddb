// The client-facing HTTPS listener of one worker: TLS 1.2/1.3 (tls-policy.ts)
// with a certificate chosen per handshake by SNI (sni-certificates.ts), and
// HTTP/2 or HTTP/1.1 by ALPN on the same port. HTTP/2 streams are served by the
// core stream API (http2/stream-request.ts), HTTP/1.1 connections by the raw
// HTTP/1.1 engine (http1/), both through the same request core and the same
// upstream pools. With --acme-challenge tls-alpn-01, a handshake offering only
// `acme-tls/1` is an ACME TLS-ALPN-01 validation (acme/alpn-challenge-responder.ts);
// without it ALPN stays Node's native list, so the default costs nothing. Certificate changes reach new
// handshakes only: established connections are never touched.
import { listenReusingPort } from '../../common/listen-address.ts';
import { createSecureServer, type Http2SecureServer, type Http2Session, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../../common/logger.ts';
import type { Backend } from '../table/backend.ts';
import type { Exchange } from '../core/exchange.ts';
import { countConnections, type Http1Server, type ListenerOptions } from '../protocols/http1/server.ts';
import type { UpstreamPool } from '../core/upstream-pool.ts';
import { serveStream, type StreamServerSide } from '../protocols/http2/stream-request.ts';
import type { ProxyContext } from '../core/proxy-context.ts';
import { ACME_TLS_PROTOCOL, type AlpnChallengeResponder } from '../acme/alpn-challenge-responder.ts';
import { SessionTicketKeys } from './session-tickets.ts';
import type { CertificateStore } from './sni-certificates.ts';
import type { CertificateSpec } from './tls-certificate.ts';
import { TLS_POLICY } from './tls-policy.ts';

/** Concurrent streams per HTTP/2 connection (nginx's default is 128). */
const MAX_CONCURRENT_STREAMS = 128;

export class HttpsProxyServer implements StreamServerSide {
  readonly #server: Http2SecureServer;
  readonly ctx: ProxyContext;
  readonly #log: Logger;
  readonly #options: ListenerOptions;
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly exchanges = new Set<Exchange>();
  readonly #sweeper: NodeJS.Timeout;
  #tickets: SessionTicketKeys | null = null;
  /** The HTTP/1.1 adapter, serving the connections that chose HTTP/1.1, and owning the upstream pools. */
  readonly #http1: Http1Server;

  constructor(ctx: ProxyContext, options: ListenerOptions, certificates: CertificateStore, log: Logger, http1: Http1Server, alpn: AlpnChallengeResponder | null) {
    this.ctx = ctx;
    this.#http1 = http1;
    this.#log = log;
    this.#options = options;
    this.#server = createSecureServer({
      ...TLS_POLICY,
      allowHTTP1: true,
      // SNI picks the certificate; a client without SNI gets the listener's own context (the default certificate).
      ...(alpn === null ? {
        SNICallback: (servername: string, cb: (err: Error | null, context?: SecureContext) => void) => cb(null, certificates.select(servername)),
      } : {
        // Both callbacks get the handshaking socket as `this` (Node calls them as its methods).
        SNICallback(this: TLSSocket, servername: string, cb: (err: Error | null, context?: SecureContext) => void) {
          cb(null, alpn.validationContext(this) ?? certificates.select(servername));
        },
        // h2, else http/1.1 (what node:http2's ALPNProtocols ['h2', 'http/1.1'] chose); else acme-tls/1 for a pending validation.
        ALPNCallback(this: TLSSocket, { servername, protocols }: { servername: string | undefined; protocols: string[] }) {
          return alpn.selectProtocol(this, servername, protocols);
        },
      }),
      handshakeTimeout: options.clientHeaderTimeout,
      settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, maxHeaderListSize: options.maxHeaderSize, enablePush: false },
      maxHeaderListPairs: 1000,
    } as Parameters<typeof createSecureServer>[0]);
    const server = this.#server;
    server.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]) => serveStream(this, stream, rawHeaders));
    // Idle HTTP/2 connections get a GOAWAY (in-flight streams finish).
    server.setTimeout(options.clientIdleTimeout);
    server.on('timeout', (idle: Http2Session | Socket) => {
      if ('close' in idle && 'goaway' in idle) idle.close();
      else idle.destroy();
    });
    server.on('connection', (socket: Socket) => {
      countConnections(ctx, socket);
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('session', (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
    });
    // node:http2 serves a handshaken connection from its 'secureConnection' listener: h2 stays
    // with it, HTTP/1.1 (ALPN http/1.1, or none) goes to the HTTP/1.1 adapter (protocols/http1/).
    const [http2Listener] = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    server.removeAllListeners('secureConnection');
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') http2Listener.call(server, socket);
      else if (alpn !== null && socket.alpnProtocol === ACME_TLS_PROTOCOL) alpn.answer(socket);
      else http1.adopt(socket);
    });
    server.on('sessionError', (err: Error) => this.#log.debug({ err: err.message }, 'HTTP/2 session error'));
    // A failed handshake (no shared protocol or cipher, unknown name without a default, a client
    // that gave up) is the client's problem: count it and drop the connection, without a log line each.
    server.removeAllListeners('tlsClientError');
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      ctx.metrics.tlsHandshakeErrors++;
      this.#log.debug({ err: err.message, remote: socket.remoteAddress }, 'TLS handshake failed');
      socket.destroy();
    });
    server.on('error', (err) => this.#log.error({ err: err.message }, 'HTTPS listener error'));
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const exchange of this.exchanges) exchange.check(now);
    }, 100);
    this.#sweeper.unref();
  }

  poolFor(backend: Backend): UpstreamPool {
    return this.#http1.poolFor(backend);
  }

  /** Serves `spec` to clients without SNI and to names no certificate covers (null: those handshakes fail). */
  setDefaultCertificate(spec: CertificateSpec | null): void {
    this.#server.setSecureContext(spec === null ? { ...TLS_POLICY } : { ...TLS_POLICY, cert: spec.cert, key: spec.key });
    // A new listener context comes with Node's own ticket callback: put the shared, renewing one back.
    this.#tickets?.install(this.#server);
  }

  /**
   * The keys that encrypt session tickets (48 bytes): the primary gives every worker the same ones,
   * so a ticket issued by one worker resumes on another; every resumption gets a new ticket, and
   * tickets under the previous keys still resume after a rotation (session-tickets.ts).
   */
  setTicketKeys(keys: Buffer): void {
    if (this.#tickets === null) this.#tickets = new SessionTicketKeys(keys);
    else this.#tickets.rotate(keys);
    this.#tickets.install(this.#server);
  }

  listen(): Promise<void> {
    return listenReusingPort(this.#server, this.#options.address);
  }

  /** From now on every HTTP/1.1 response closes its connection; the listener still accepts. */
  markDraining(): void {
    this.#http1.markDraining();
  }

  /** Stops accepting, sends GOAWAY, lets in-flight requests finish (at most `timeout` ms), then closes everything. */
  async close(timeout: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    // GOAWAY now: streams in flight finish, no new ones start.
    for (const session of this.#sessions) session.close();
    const http1 = this.#http1.close(timeout);
    const deadline = Date.now() + timeout;
    while (this.ctx.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.ctx.inFlight > 0) this.#log.warn({ inFlight: this.ctx.inFlight }, 'drain timeout; closing remaining HTTPS connections');
    for (const session of this.#sessions) session.destroy();
    await http1;
    clearInterval(this.#sweeper);
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}
