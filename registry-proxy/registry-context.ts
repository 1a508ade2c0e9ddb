// What every request handler works with: the registry's stores and limits.
import type { Logger } from '../common/logger.ts';
import type { Catalog } from './catalog.ts';
import type { RepositoryBlobs } from './repository-blobs.ts';
import type { RepositoryManifests } from './repository-manifests.ts';
import type { UploadSessions } from './upload-sessions.ts';

export interface RegistryContext {
  readonly blobs: RepositoryBlobs;
  readonly manifests: RepositoryManifests;
  readonly uploads: UploadSessions;
  readonly catalog: Catalog;
  readonly maxManifestSize: number;
  readonly log: Logger;
}
