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
// Safe while pushes continue: every delete is conditional on the object not
// having been modified since the cut-off (now − grace), checked by Azure at
// the moment of the delete, and a push renews (touches, in storage) every
// blob and link it reuses — an upload of a blob already stored, a mount, the
// layers and children a manifest PUT names — before relying on it. So a blob
// a push reuses is either renewed first (the delete is refused) or deleted
// first (the push's renewal fails and it writes the blob again, or answers
// MANIFEST_BLOB_UNKNOWN): a push completes with everything stored, or fails.
//
// Upload state under `_uploads/` (what a registry node staged for an upload
// and could not remove, because it died; distribution's upload state) is
// deleted once unmodified for longer than --upload-expiry, the age at which
// the registry gives up an unfinished upload itself.
import type { Logger } from '../../common/logger.ts';
import type { BlobStore, StoredFile } from '../storage/blob-store.ts';
import { silentProgress, type GcProgress } from './gc-progress.ts';
import { parseManifest } from '../repository/manifest-document.ts';
import { tryParseDigest, type Digest } from '../references.ts';
import { StoragePaths } from '../storage/storage-paths.ts';

export interface GarbageCollectionOptions {
  readonly dryRun: boolean;
  /** Blobs and links younger than this are kept whatever references them. */
  readonly gracePeriod: number;
  /** Paths per delete batch. */
  readonly batchSize: number;
  /** Delete batches in flight at once. */
  readonly concurrency: number;
  /** Upload state unmodified for longer than this is deleted. */
  readonly uploadExpiry: number;
  /** Where to say how far it got (nothing by default). */
  readonly progress?: GcProgress;
}

export interface GarbageCollectionReport {
  readonly repositories: number;
  readonly manifests: number;
  readonly blobsKept: number;
  readonly blobsDeleted: number;
  /** Unreferenced and old when listed, but renewed by a push before their delete: kept. */
  readonly blobsRenewed: number;
  readonly bytesDeleted: number;
  readonly linksDeleted: number;
  /** Objects of abandoned uploads (below `_uploads/`) deleted (with --dry-run: that would be). */
  readonly uploadsDeleted: number;
  /** The blob paths deleted (with --dry-run: that would be deleted). */
  readonly deleted: readonly string[];
}

/** Manifests read at once while marking (small reads; latency, not bandwidth, bounds them). */
const MANIFEST_READERS = 16;
const BLOB_DATA = /\/blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/;
/** `/<name>/_uploads/<id>/…` below repositories/. */
const UPLOAD_STATE = /^\/.+?\/_uploads\/[^/]+\/.+$/;
/** `/<name>/_layers|_manifests/revisions/<algorithm>/<hex>/link` below repositories/. */
const REPOSITORY_LINK = /^\/(.+?)\/(_layers|_manifests\/revisions)\/([a-z0-9]+)\/([0-9a-f]+)\/link$/;

export async function collectGarbage(store: BlobStore, options: GarbageCollectionOptions, log: Logger): Promise<GarbageCollectionReport> {
  const progress = options.progress ?? silentProgress;
  const started = Date.now();
  const protectedSince = started - options.gracePeriod;
  // Azure's Last-Modified has whole seconds: anything modified in the cut-off's
  // second or later must fail the delete's condition.
  const unmodifiedSince = new Date(Math.floor(protectedSince / 1000) * 1000 - 1000);
  const marked = new Set<string>();
  const layerLinks = new Map<string, string[]>(); // digest → its _layers link paths
  const revisions: { name: string; digest: Digest }[] = [];
  const repositories = new Set<string>();
  const uploadsCutOff = started - options.uploadExpiry;
  const staleUploads: string[] = [];

  // One listing of every link of every repository (including repositories
  // that have layers but no manifest yet, which the catalog does not show).
  progress.phase('listing repository links');
  for await (const file of store.walk(StoragePaths.repositoriesRoot)) {
    progress.advance();
    const relative = file.path.slice(StoragePaths.repositoriesRoot.length);
    if (UPLOAD_STATE.test(relative)) {
      if (file.modified.getTime() < uploadsCutOff) staleUploads.push(file.path);
      continue;
    }
    const match = REPOSITORY_LINK.exec(relative);
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
  progress.end(`${repositories.size} repositories, ${revisions.length} manifests`);

  progress.phase('marking what manifests reference', revisions.length);
  const pending = [...revisions];
  const readManifests = async () => {
    for (let next = pending.pop(); next; next = pending.pop()) {
      const content = await store.getContent(StoragePaths.blobData(next.digest));
      progress.advance();
      if (!content) {
        log.warn({ repository: next.name, digest: next.digest.value }, 'manifest revision without its blob');
        continue;
      }
      for (const referenced of references(content)) marked.add(referenced);
    }
  };
  await Promise.all(Array.from({ length: MANIFEST_READERS }, readManifests));
  progress.end(`${marked.size} blobs marked`);

  progress.phase('listing blobs');
  const doomed: StoredFile[] = [];
  let blobsKept = 0;
  for await (const file of store.walk(StoragePaths.blobsRoot)) {
    progress.advance();
    const match = BLOB_DATA.exec(file.path);
    const digest = match ? tryParseDigest(`${match[1]}:${match[2]}`) : null;
    if (!digest || marked.has(digest.value) || file.modified.getTime() >= protectedSince) {
      blobsKept++;
      continue;
    }
    doomed.push(file);
  }
  progress.end(`${blobsKept} kept, ${doomed.length} unreferenced`);

  const linksOf = (paths: readonly string[]) => paths.flatMap((path) => {
    const match = BLOB_DATA.exec(path)!;
    return layerLinks.get(`${match[1]}:${match[2]}`) ?? [];
  });
  const summary = { repositories: repositories.size, manifests: revisions.length, blobsKept };
  if (options.dryRun) {
    const paths = doomed.map((f) => f.path);
    return { ...summary, blobsDeleted: doomed.length, blobsRenewed: 0, bytesDeleted: doomed.reduce((sum, f) => sum + f.size, 0), linksDeleted: linksOf(paths).length, uploadsDeleted: staleUploads.length, deleted: paths };
  }
  // Blob data first: a link without its blob reads as "unknown", never as corrupt.
  // Only the links of blobs really deleted go: a blob a push renewed keeps its links.
  progress.phase('deleting blobs', doomed.length);
  const deleted = new Set(await deleteInBatches(store, doomed.map((f) => f.path), unmodifiedSince, options, progress));
  progress.end(`${deleted.size} deleted, ${doomed.length - deleted.size} renewed by pushes and kept`);
  const links = linksOf([...deleted]);
  progress.phase('deleting their repository links', links.length);
  const linksDeleted = (await deleteInBatches(store, links, unmodifiedSince, options, progress)).length;
  progress.end();
  progress.phase('deleting abandoned uploads', staleUploads.length);
  const uploadsDeleted = (await deleteInBatches(store, staleUploads, new Date(Math.floor(uploadsCutOff / 1000) * 1000 - 1000), options, progress)).length;
  progress.end();
  const report = {
    ...summary,
    blobsKept: blobsKept + doomed.length - deleted.size,
    blobsDeleted: deleted.size,
    blobsRenewed: doomed.length - deleted.size,
    bytesDeleted: doomed.reduce((sum, f) => sum + (deleted.has(f.path) ? f.size : 0), 0),
    linksDeleted,
    uploadsDeleted,
    deleted: doomed.filter((f) => deleted.has(f.path)).map((f) => f.path),
  };
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

async function deleteInBatches(store: BlobStore, paths: readonly string[], unmodifiedSince: Date, options: GarbageCollectionOptions, progress: GcProgress): Promise<string[]> {
  const batches: string[][] = [];
  for (let i = 0; i < paths.length; i += options.batchSize) batches.push(paths.slice(i, i + options.batchSize));
  const removed: string[] = [];
  const worker = async () => {
    for (let batch = batches.shift(); batch; batch = batches.shift()) {
      removed.push(...await store.deleteBatch(batch, { unmodifiedSince }));
      progress.advance(batch.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, batches.length) }, worker));
  return removed;
}
