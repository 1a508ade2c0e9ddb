// Garbage collection (`tug registry gc`): deletes the blobs no manifest
// references. Mark: every manifest revision of every repository is a root; it
// and what it points at (config, layers, child manifests, subject) are kept.
// Sweep: every other blob is deleted — unless it, or a repository link to it,
// was written within the grace period, which protects pushes in progress
// (layers are uploaded before the manifest that references them). Deletes go
// in batches with bounded concurrency (Azure takes 256 deletes per request),
// and the `_layers` links of deleted blobs go with them, so no repository
// keeps claiming a blob that is gone.
//
// Like distribution's, it must not race a push of a manifest that reuses a
// blob older than the grace period that nothing referenced: run it when
// pushes are quiet.
import type { Logger } from '../common/logger.ts';
import type { BlobStore, StoredFile } from './blob-store.ts';
import { parseManifest } from './manifest-document.ts';
import { tryParseDigest, type Digest } from './references.ts';
import { StoragePaths } from './storage-paths.ts';

export interface GarbageCollectionOptions {
  readonly dryRun: boolean;
  /** Blobs and links younger than this are kept whatever references them. */
  readonly gracePeriod: number;
  /** Paths per delete batch. */
  readonly batchSize: number;
  /** Delete batches in flight at once. */
  readonly concurrency: number;
}

export interface GarbageCollectionReport {
  readonly repositories: number;
  readonly manifests: number;
  readonly blobsKept: number;
  readonly blobsDeleted: number;
  readonly bytesDeleted: number;
  readonly linksDeleted: number;
  readonly deleted: readonly string[];
}

/** Manifests read at once while marking (small reads; latency, not bandwidth, bounds them). */
const MANIFEST_READERS = 16;
const BLOB_DATA = /\/blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/;
/** `/<name>/_layers|_manifests/revisions/<algorithm>/<hex>/link` below repositories/. */
const REPOSITORY_LINK = /^\/(.+?)\/(_layers|_manifests\/revisions)\/([a-z0-9]+)\/([0-9a-f]+)\/link$/;

export async function collectGarbage(store: BlobStore, options: GarbageCollectionOptions, log: Logger): Promise<GarbageCollectionReport> {
  const started = Date.now();
  const protectedSince = started - options.gracePeriod;
  const marked = new Set<string>();
  const layerLinks = new Map<string, string[]>(); // digest → its _layers link paths
  const revisions: { name: string; digest: Digest }[] = [];
  const repositories = new Set<string>();

  // One listing of every link of every repository (including repositories
  // that have layers but no manifest yet, which the catalog does not show).
  for await (const file of store.walk(StoragePaths.repositoriesRoot)) {
    const match = REPOSITORY_LINK.exec(file.path.slice(StoragePaths.repositoriesRoot.length));
    const digest = match ? tryParseDigest(`${match[3]}:${match[4]}`) : null;
    if (!match || !digest) continue;
    repositories.add(match[1]);
    if (match[2] === '_manifests/revisions') {
      revisions.push({ name: match[1], digest });
      marked.add(digest.value);
    } else {
      if (file.modified.getTime() >= protectedSince) marked.add(digest.value);
      const links = layerLinks.get(digest.value) ?? [];
      links.push(file.path);
      layerLinks.set(digest.value, links);
    }
  }
  const pending = [...revisions];
  const readManifests = async () => {
    for (let next = pending.pop(); next; next = pending.pop()) {
      const content = await store.getContent(StoragePaths.blobData(next.digest));
      if (!content) {
        log.warn({ repository: next.name, digest: next.digest.value }, 'manifest revision without its blob');
        continue;
      }
      for (const referenced of references(content)) marked.add(referenced);
    }
  };
  await Promise.all(Array.from({ length: MANIFEST_READERS }, readManifests));

  const doomed: StoredFile[] = [];
  let blobsKept = 0;
  for await (const file of store.walk(StoragePaths.blobsRoot)) {
    const match = BLOB_DATA.exec(file.path);
    const digest = match ? tryParseDigest(`${match[1]}:${match[2]}`) : null;
    if (!digest || marked.has(digest.value) || file.modified.getTime() >= protectedSince) {
      blobsKept++;
      continue;
    }
    doomed.push(file);
  }

  const doomedLinks = doomed.flatMap((file) => {
    const match = BLOB_DATA.exec(file.path)!;
    return layerLinks.get(`${match[1]}:${match[2]}`) ?? [];
  });
  const report = {
    repositories: repositories.size,
    manifests: revisions.length,
    blobsKept,
    blobsDeleted: doomed.length,
    bytesDeleted: doomed.reduce((sum, f) => sum + f.size, 0),
    linksDeleted: doomedLinks.length,
    deleted: doomed.map((f) => f.path),
  };
  if (options.dryRun) return report;
  // Blob data first: a link without its blob reads as "unknown", never as corrupt.
  await deleteInBatches(store, doomed.map((f) => f.path), options);
  await deleteInBatches(store, doomedLinks, options);
  log.info({ ...report, deleted: undefined, ms: Date.now() - started }, 'garbage collected');
  return report;
}

/** The digests a manifest points at: config, layers, child manifests and subject. */
function references(content: Buffer): string[] {
  try {
    const doc = parseManifest(content);
    return [doc.config, ...doc.layers, ...doc.manifests, doc.subject].flatMap((d) => (d ? [d.digest.value] : []));
  } catch {
    return []; // not a manifest Tug understands (e.g. schema1): it is kept, its references are not known
  }
}

async function deleteInBatches(store: BlobStore, paths: readonly string[], options: GarbageCollectionOptions): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < paths.length; i += options.batchSize) batches.push(paths.slice(i, i + options.batchSize));
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) await store.deleteBatch(batch);
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, batches.length) }, worker));
}
