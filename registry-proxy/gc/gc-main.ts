// Wires one garbage collection run: config in, Azure store, the collector;
// the report on stdout as one JSON line, progress on stderr, and the exit
// code says how it went.
import { createLogger } from '../../common/logger.ts';
import { AzureBlobStore } from '../storage/azure-blob-store.ts';
import { collectGarbage } from './garbage-collector.ts';
import type { GcConfig } from './gc-config.ts';
import { gcProgress } from './gc-progress.ts';

/** Azure's batch limit; one request deletes this many blobs. */
const DELETE_BATCH = 256;

export async function runGarbageCollection(config: GcConfig): Promise<void> {
  const log = createLogger(config.logLevel, { component: 'registry-gc' });
  const store = new AzureBlobStore({
    connectionString: config.azureConnectionString,
    container: config.container,
    rootDirectory: config.rootDirectory,
    legacyRootPrefix: config.legacyRootPrefix,
    blockSize: 4 * 1024 * 1024,
    blockConcurrency: 1,
  });
  try {
    const report = await collectGarbage(store, {
      dryRun: config.dryRun,
      gracePeriod: config.gracePeriod,
      batchSize: DELETE_BATCH,
      concurrency: config.deleteConcurrency,
      uploadExpiry: config.uploadExpiry,
      progress: gcProgress(),
    }, log);
    log.info({ ...report, dryRun: config.dryRun }, config.dryRun ? 'garbage collection (dry run): would delete' : 'garbage collection done');
    log.flush();
    process.exitCode = 0;
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'garbage collection failed; nothing after the failure was deleted');
    log.flush();
    process.exitCode = 1;
  }
}
