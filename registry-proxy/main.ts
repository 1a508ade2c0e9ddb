// Wires the registry: config in, Azure store, repositories and uploads over
// it, the HTTP server on top; signals to a graceful stop.
import { AdminServer } from '../common/admin-server.ts';
import { formatListenAddress } from '../common/listen-address.ts';
import { createLogger } from '../common/logger.ts';
import { AzureBlobStore } from './storage/azure-blob-store.ts';
import { azureOperationMetrics } from './storage/azure-operation-metrics.ts';
import type { BlobStore } from './storage/blob-store.ts';
import { CachingBlobStore } from './storage/caching-blob-store.ts';
import { Catalog } from './repository/catalog.ts';
import type { RegistryConfig } from './config.ts';
import { registryDashboard } from './dashboard/dashboard-routes.ts';
import { DiskBlobCache } from './storage/disk-blob-cache.ts';
import { MirrorBlobs } from './mirror/mirror-blobs.ts';
import { MirrorManifests } from './mirror/mirror-manifests.ts';
import { createAccessGate } from './auth/registry-access.ts';
import { RegistryMetrics } from './registry-metrics.ts';
import { RegistryServer } from './registry-server.ts';
import { RepositoryBlobs } from './repository/repository-blobs.ts';
import { RepositoryManifests } from './repository/repository-manifests.ts';
import { UploadSessions } from './repository/upload-sessions.ts';
import { UpstreamRegistry } from './mirror/upstream-registry.ts';

/** How often a missing container is retried, and abandoned uploads are purged. */
const CONTAINER_RETRY_MS = 5_000;
const PURGE_INTERVAL_MS = 60 * 60_000;

export async function startRegistry(config: RegistryConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const metrics = new RegistryMetrics();
  const azure = new AzureBlobStore({
    connectionString: config.azureConnectionString,
    container: config.container,
    rootDirectory: config.rootDirectory,
    legacyRootPrefix: config.legacyRootPrefix,
    blockSize: config.blockSize,
    blockConcurrency: config.blockConcurrency,
    policies: [azureOperationMetrics((operation, outcome, seconds) => metrics.azureOperation(operation, outcome, seconds))],
  });
  const cache = config.cacheDir === null ? null : new DiskBlobCache(config.cacheDir, config.cacheSize, log);
  const store: BlobStore = cache ? new CachingBlobStore(azure, cache) : azure;
  const gate = await createAccessGate(config);
  const upstream = config.proxy ? new UpstreamRegistry(config.proxy.remote, config.proxy.credentials, log) : null;
  const blobs = upstream ? new MirrorBlobs(store, upstream, log) : new RepositoryBlobs(store);
  const manifests = upstream ? new MirrorManifests(store, upstream, config.proxy!.ttl, log) : new RepositoryManifests(store);
  const uploads = new UploadSessions(config.uploadDir, blobs, log);
  const server = new RegistryServer({
    blobs,
    manifests,
    uploads,
    catalog: new Catalog(store),
    maxManifestSize: config.maxManifestSize,
    blobRedirect: config.blobRedirect,
    log,
  }, { accessLog: config.accessLog, idleTimeout: config.idleTimeout, gate, observer: metrics, readOnly: upstream !== null });
  metrics.uploadSessions = () => uploads.open;
  if (cache) metrics.cache = () => ({ hits: cache.hits, misses: cache.misses, evictions: cache.evictions, fills: cache.fills, bytes: cache.bytes, entries: cache.entries });
  let containerReady = false;
  let stopping = false;
  // Storage being unreachable does not fail the probe: the node cache may still serve, and uploads answer 503.
  const health = () => ({ ready: !stopping, status: stopping ? 'stopping' : 'serving', container: containerReady ? 'ready' : 'not reached yet' });
  const admin = config.admin === null ? null : new AdminServer(config.admin, {
    ready: () => !stopping,
    health,
    metrics: async () => metrics.render(),
    ...registryDashboard({ config, metrics, health }),
  });

  const timers: NodeJS.Timeout[] = [];
  const stop = () => {
    for (const timer of timers) clearInterval(timer);
    stopping = true;
    void server.close(config.drainTimeout).then(() => admin?.close()).then(() => {
      log.info({ component: 'registry' }, 'registry stopped');
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  try {
    await cache?.start();
    await uploads.start();
    await uploads.purge(config.uploadExpiry);
    const bound = await server.listen(config.listen);
    const adminBound = await admin?.listen();
    log.info({ component: 'registry', listen: formatListenAddress(bound), admin: adminBound ? formatListenAddress(adminBound) : 'off', container: config.container, rootDirectory: config.rootDirectory, legacyRootPrefix: config.legacyRootPrefix, proxyRemote: config.proxy?.remote.origin ?? null, blobRedirect: config.blobRedirect }, 'registry listening');
  } catch (err) {
    log.fatal({ component: 'registry', err: (err as Error).message }, 'registry failed to start');
    log.flush();
    server.destroy();
    void admin?.close();
    process.exit(1);
  }
  // Azure may be unreachable at boot: serve anyway (storage errors answer 503) and keep trying.
  const ensureContainer = async (): Promise<void> => {
    try {
      await azure.ensureContainer();
      containerReady = true;
      log.info({ component: 'registry', container: config.container }, 'container ready');
    } catch (err) {
      log.warn({ component: 'registry', err: (err as Error).message, retryMs: CONTAINER_RETRY_MS }, 'cannot reach the container yet; retrying');
      const timer = setTimeout(() => void ensureContainer(), CONTAINER_RETRY_MS);
      timer.unref();
    }
  };
  await ensureContainer();
  timers.push(setInterval(() => void uploads.purge(config.uploadExpiry).catch(() => {}), PURGE_INTERVAL_MS).unref());
}
