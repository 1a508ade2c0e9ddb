// A proxy worker process: applies table changes sent by the primary and serves
// HTTP on the shared port (SO_REUSEPORT). It never talks to etcd itself.
import { createLogger } from '../common/logger.ts';
import { BackendRegistry } from './backend-registry.ts';
import type { RouterConfig } from './config.ts';
import type { ProxyContext } from './proxy-exchange.ts';
import { ProxyServer } from './proxy-server.ts';
import { RouteTable } from './route-table.ts';
import { WORKER_CONFIG_ENV, type ToPrimary, type ToWorker } from './worker-messages.ts';

export async function runWorker(): Promise<void> {
  const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? 'null') as RouterConfig | null;
  if (config === null || typeof process.send !== 'function') throw new Error('router worker started without its primary');
  const root = createLogger(config.logLevel);
  const log = root.child({ component: 'router-worker' });
  const send = (message: ToPrimary) => process.send?.(message);
  const registry = new BackendRegistry({
    connectTimeout: config.connectTimeout,
    keepAliveTimeout: config.upstreamKeepAlive,
    maxConnections: config.maxConnections,
    maxFails: config.maxFails,
    ejectBase: config.ejectBase,
    ejectMax: config.ejectMax,
  });
  const table = new RouteTable(registry, config.domain);
  const ctx: ProxyContext = {
    table,
    accessLog: config.accessLog ? root.child({ component: 'access' }) : null,
    log,
    proto: 'http',
    responseTimeout: config.responseTimeout,
    idleTimeout: config.idleTimeout,
    maxAttempts: config.maxAttempts,
    inFlight: 0,
  };
  const server = new ProxyServer(ctx, {
    address: config.http,
    maxHeaderSize: config.maxHeaderSize,
    clientHeaderTimeout: config.clientHeaderTimeout,
    clientIdleTimeout: config.clientIdleTimeout,
    keepAliveTimeout: config.keepAliveTimeout,
  }, log);

  let draining: Promise<void> | null = null;
  const drain = () => {
    draining ??= (async () => {
      await server.close(config.drainTimeout);
      await registry.close();
      log.flush();
      process.exit(0);
    })();
  };
  process.on('message', (message: ToWorker) => {
    if (message.type === 'changes') table.apply(message.changes);
    else if (message.type === 'drain') drain();
  });
  process.on('SIGTERM', drain);
  process.on('SIGINT', drain);
  // The primary going away means nobody feeds this table any more: drain and go.
  process.on('disconnect', drain);

  try {
    await server.listen();
  } catch (err) {
    send({ type: 'fatal', message: `cannot listen on ${config.http.host}:${config.http.port}: ${(err as Error).message}` });
    process.exit(1);
  }
  send({ type: 'listening' });
}
