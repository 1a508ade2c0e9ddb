// A proxy worker process: applies table changes sent by the primary and serves
// HTTP and HTTPS on the shared ports (SO_REUSEPORT). It never talks to etcd
// itself; it answers the primary's metrics requests with a snapshot.
import { formatListenAddress } from '../../common/listen-address.ts';
import { createLogger } from '../../common/logger.ts';
import { createAccessLog } from '../core/access-log.ts';
import { BackendRegistry } from '../table/backend-registry.ts';
import type { RouterConfig } from '../config.ts';
import type { HttpsProxyServer } from '../tls/https-server.ts';
import type { ProxyContext } from '../core/proxy-context.ts';
import { Http1Server, type Http1ServerOptions } from '../protocols/http1/server.ts';
import { RouteTable } from '../table/route-table.ts';
import type { CertificateStore } from '../tls/sni-certificates.ts';
import { WebSocketProxy } from '../protocols/websocket/websocket-proxy.ts';
import { WorkerMetrics } from '../metrics/worker-metrics.ts';
import { WORKER_CONFIG_ENV, type ToPrimary, type ToWorker } from './worker-messages.ts';
import { ConcurrencyLimit } from '../../common/concurrency-limit.ts';
import { HASH_CHECKS } from '../middleware/basic-auth.ts';
import { ClusterShare } from '../middleware/cluster-share.ts';
import { UserLists } from '../middleware/user-lists.ts';
import { RouteKeys } from '../etcd/route-keys.ts';
import { AlpnChallengeStore } from '../acme/alpn-challenge-store.ts';
import { AlpnChallengeResponder } from '../acme/alpn-challenge-responder.ts';
import { QuietHeapReducer } from './quiet-heap.ts';

/**
 * The HTTPS listener's modules, imported only by a worker that serves HTTPS: node:http2 and node:tls
 * come with them (~6 MiB of a worker's RSS). The primary compiles them with the rest (worker-compile-cache.ts).
 */
export function importHttpsListener() {
  return Promise.all([import('../tls/https-server.ts'), import('../tls/sni-certificates.ts')]);
}

export async function runWorker(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as RouterConfig | null;
  if (config === null || typeof process.send !== 'function') throw new Error('router worker started without its primary');
  const root = createLogger(config.logLevel, {}, config.logFormat);
  const log = root.child({ component: 'router-worker' });
  const send = (message: ToPrimary) => process.send?.(message);
  const registry = new BackendRegistry({
    maxFails: config.maxFails,
    ejectBase: config.ejectBase,
    ejectMax: config.ejectMax,
  }, config.websocketDrain);
  const share = new ClusterShare(config.workers);
  const hashChecks = new ConcurrencyLimit(HASH_CHECKS.concurrency, HASH_CHECKS.queue);
  const userLists = new UserLists(new RouteKeys(config.etcdPrefix).authPrefix, hashChecks);
  const table = new RouteTable(registry, config.domain, { share, hashChecks, userLists });
  const metrics = new WorkerMetrics();
  const http: ProxyContext = {
    table,
    accessLog: config.accessLog ? createAccessLog(config.accessLogFormat, root) : null,
    log,
    proto: 'http',
    httpsPort: config.https?.port ?? 443,
    metrics,
    responseTimeout: config.responseTimeout,
    idleTimeout: config.idleTimeout,
    maxAttempts: config.maxAttempts,
    inFlight: 0,
  };
  const https: ProxyContext = { ...http, proto: 'https', inFlight: 0 };
  const listenerOptions = (address: NonNullable<RouterConfig['https']>): Http1ServerOptions => ({
    address,
    maxHeaderSize: config.maxHeaderSize,
    clientHeaderTimeout: config.clientHeaderTimeout,
    clientIdleTimeout: config.clientIdleTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
    upstream: { connectTimeout: config.connectTimeout, keepAliveTimeout: config.upstreamKeepAlive, maxConnections: config.maxConnections },
  });
  const websockets = new WebSocketProxy({ connectTimeout: config.connectTimeout });
  const upgrade = websockets.handleUpgrade.bind(websockets);
  const servers: (Http1Server | HttpsProxyServer)[] = [new Http1Server(http, listenerOptions(config.http), log, upgrade)];
  let certificates: CertificateStore | null = null;
  // TLS-ALPN-01 is answered only by routers told to use it: the others keep Node's native ALPN list.
  const alpnChallenges = config.acmeChallenge === 'tls-alpn-01' ? new AlpnChallengeStore() : null;
  let secure: HttpsProxyServer | null = null;
  if (config.https !== null) {
    const [{ HttpsProxyServer }, { CertificateStore }] = await importHttpsListener();
    certificates = new CertificateStore((spec) => secure?.setDefaultCertificate(spec));
    // HTTP/1.1 over TLS goes to an HTTP/1.1 engine of its own (HTTPS context, its own pools for h2 too).
    const http1 = new Http1Server(https, listenerOptions(config.https), log, upgrade);
    secure = new HttpsProxyServer(https, listenerOptions(config.https), certificates, log, http1, alpnChallenges === null ? null : new AlpnChallengeResponder(alpnChallenges, log));
    servers.push(secure);
  }

  let draining: Promise<void> | null = null;
  const drain = () => {
    draining ??= (async () => {
      // WebSockets are long-lived: waiting would not end them. They get a clean 1001 now, and
      // clients reconnect through the load balancer to a router that is not stopping.
      const closing = websockets.close('router shutting down');
      await Promise.all(servers.map((server) => server.close(config.drainTimeout)));
      await closing;
      registry.close();
      log.flush();
      process.exit(0);
    })();
  };
  process.on('message', (message: ToWorker) => {
    if (message.type === 'changes') {
      table.apply(message.changes);
      for (const refused of certificates?.apply(message.changes) ?? []) log.warn({ err: refused }, 'certificate refused by this worker; the previous one keeps serving');
      for (const refused of alpnChallenges?.apply(message.changes) ?? []) log.warn({ err: refused }, 'TLS-ALPN-01 validation certificate refused by this worker');
    } else if (message.type === 'metrics-request') {
      send({ type: 'metrics', id: message.id, snapshot: metrics.snapshot(table) });
    } else if (message.type === 'draining') {
      // The plain listener answers Connection: close from now on (HTTPS keeps its connections until the drain).
      for (const server of servers) server.markDraining();
    } else if (message.type === 'routers') {
      share.setRouters(message.count);
    } else if (message.type === 'drain') {
      drain();
    } else if (message.type === 'health') {
      table.setUnhealthy(new Set(message.unhealthy));
    } else if (message.type === 'sticky-key') {
      table.stickyKey = Buffer.from(message.key, 'base64');
    } else if (message.type === 'ticket-keys') {
      secure?.setTicketKeys(Buffer.from(message.keys, 'base64'));
    }
  });
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  // The primary going away means nobody feeds this table any more: drain and go.
  process.on('disconnect', drain);

  for (const [server, address] of [[servers[0], config.http], [servers[1], config.https]] as const) {
    if (server === undefined || address === null) continue;
    try {
      await server.listen();
    } catch (err) {
      send({ type: 'fatal', message: `cannot listen on ${formatListenAddress(address)}: ${(err as Error).message}` });
      process.exit(1);
    }
  }
  // Last: it changes V8's flags, which must match the compile cache's while modules load.
  if (config.quietGc) QuietHeapReducer.forThisProcess().start();
  send({ type: 'listening' });
}
