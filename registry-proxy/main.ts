// Wires the registry: config in, Azure store, repositories and uploads over
// it, the HTTP server on top; signals to a graceful stop.
import { formatListenAddress } from '../common/listen-address.ts';
import { createLogger } from '../common/logger.ts';
import { AzureBlobStore } from './azure-blob-store.ts';
import type { BlobStore } from './blob-store.ts';
import { CachingBlobStore } from './caching-blob-store.ts';
import { Catalog } from './catalog.ts';
import type { RegistryConfig } from './config.ts';
import { DiskBlobCache } from './disk-blob-cache.ts';
import { createAccessGate } from './registry-access.ts';
import { RegistryServer } from './registry-server.ts';
import { RepositoryBlobs } from './repository-blobs.ts';
import { RepositoryManifests } from './repository-manifests.ts';
import { UploadSessions } from './upload-sessions.ts';

/** How often a missing container is retried, and abandoned uploads are purged. */
const CONTAINER_RETRY_MS = 5_000;
const PURGE_INTERVAL_MS = 60 * 60_000;

export async function startRegistry(config: RegistryConfig): Promise<void> {
  const log = createLogger(config.logLevel);
  const azure = new AzureBlobStore({
    connectionString: config.azureConnectionString,
    container: config.container,
    rootDirectory: config.rootDirectory,
    legacyRootPrefix: config.legacyRootPrefix,
    blockSize: config.blockSize,
    blockConcurrency: config.blockConcurrency,
  });
  const cache = config.cacheDir === null ? null : new DiskBlobCache(config.cacheDir, config.cacheSize, log);
  const store: BlobStore = cache ? new CachingBlobStore(azure, cache) : azure;
  const gate = await createAccessGate(config);
  const blobs = new RepositoryBlobs(store);
  const uploads = new UploadSessions(config.uploadDir, blobs, log);
  const server = new RegistryServer({
    blobs,
    manifests: new RepositoryManifests(store),
    uploads,
    catalog: new Catalog(store),
    maxManifestSize: config.maxManifestSize,
    log,
  }, { accessLog: config.accessLog, idleTimeout: config.idleTimeout, gate });

  const timers: NodeJS.Timeout[] = [];
  const stop = () => {
    for (const timer of timers) clearInterval(timer);
    void server.close(config.drainTimeout).then(() => {
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
    log.info({ component: 'registry', listen: formatListenAddress(bound), container: config.container, rootDirectory: config.rootDirectory, legacyRootPrefix: config.legacyRootPrefix }, 'registry listening');
  } catch (err) {
    log.fatal({ component: 'registry', err: (err as Error).message }, 'registry failed to start');
    log.flush();
    server.destroy();
    process.exit(1);
  }
  // Azure may be unreachable at boot: serve anyway (storage errors answer 503) and keep trying.
  const ensureContainer = async (): Promise<void> => {
    try {
      await azure.ensureContainer();
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
