// What every request handler works with: the registry's stores and limits.
import type { Logger } from '../common/logger.ts';
import type { Catalog } from './repository/catalog.ts';
import type { RepositoryBlobs } from './repository/repository-blobs.ts';
import type { RepositoryManifests } from './repository/repository-manifests.ts';
import type { UploadSessions } from './repository/upload-sessions.ts';

export interface RegistryContext {
  readonly blobs: RepositoryBlobs;
  readonly manifests: RepositoryManifests;
  readonly uploads: UploadSessions;
  readonly catalog: Catalog;
  readonly maxManifestSize: number;
  /** Blob GETs not served from the node's cache are redirected to storage (--blob-redirect). */
  readonly blobRedirect: boolean;
  readonly log: Logger;
}
