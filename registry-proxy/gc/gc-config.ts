// `tug registry gc`'s configuration: the storage flags it shares with
// `tug registry`, and its own, each with its environment variable and
// documented default; validated at start in `resolveGcConfig`.
import { configError } from '../../common/errors.ts';
import type { LogLevel } from '../../common/logger.ts';
import { optionReader, type OptionSpec } from '../../common/option-spec.ts';
import { parseDuration, parseInteger } from '../../common/units.ts';
import { LOG_LEVELS, registryOptions, resolveStorageOptions, type StorageOptions } from '../config.ts';

export interface GcConfig extends StorageOptions {
  readonly dryRun: boolean;
  readonly gracePeriod: number;
  readonly deleteConcurrency: number;
  readonly uploadExpiry: number;
  readonly logLevel: LogLevel;
}

export const gcOptions = {
  azureConnectionString: registryOptions.azureConnectionString,
  container: registryOptions.container,
  rootDirectory: registryOptions.rootDirectory,
  legacyRootPrefix: registryOptions.legacyRootPrefix,
  dryRun: { flags: '--dry-run', env: 'TUG_REGISTRY_GC_DRY_RUN', default: undefined, description: 'list what would be deleted and delete nothing' },
  gracePeriod: { flags: '--grace-period <duration>', env: 'TUG_REGISTRY_GC_GRACE_PERIOD', default: '1h', description: 'blobs, manifests and links younger than this are never deleted (a push must finish within it)' },
  deleteConcurrency: { flags: '--delete-concurrency <n>', env: 'TUG_REGISTRY_GC_DELETE_CONCURRENCY', default: '4', description: 'delete batches (up to 256 blobs each) in flight at once' },
  uploadExpiry: { ...registryOptions.uploadExpiry, description: 'what an upload left below `_uploads/` unmodified for longer than this is deleted (set it as for `tug registry`)' },
  logLevel: registryOptions.logLevel,
} as const satisfies Record<keyof GcConfig, OptionSpec>;

export type RawGcOptions = Partial<Record<keyof GcConfig, string | boolean>>;

export function resolveGcConfig(raw: RawGcOptions): GcConfig {
  const { get } = optionReader(gcOptions, raw);
  const logLevel = get('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw configError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  const dryRun = raw.dryRun;
  return {
    ...resolveStorageOptions(get, raw.legacyRootPrefix),
    dryRun: dryRun === true || (typeof dryRun === 'string' && dryRun !== '' && dryRun !== '0' && dryRun !== 'false'),
    gracePeriod: parseDuration('--grace-period', get('gracePeriod')),
    deleteConcurrency: parseInteger('--delete-concurrency', get('deleteConcurrency'), 1, 64),
    uploadExpiry: parseDuration('--upload-expiry', get('uploadExpiry')),
    logLevel,
  };
}
