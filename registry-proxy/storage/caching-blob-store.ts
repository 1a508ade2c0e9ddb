// A BlobStore wrapper that lets a node serve repeat pulls without Azure and
// keep serving what it knows while Azure is down. It is the one place that
// decides what may be answered from the node instead of from storage:
//
// Reads only: a write path never takes this node's word that something is
// stored (gc may have deleted it since); it calls `touch`, which asks Azure.
//
//   blob data (blobs/…/data)     immutable: served from the disk cache; filled
//                                 from Azure once per blob (single flight)
//   repository links             (_layers, _manifests/revisions) remembered
//                                 when seen; trusted without asking Azure for
//                                 MEMBERSHIP_FRESH_MS, and past that whenever
//                                 Azure cannot answer
//   other links (tags)           always asked of Azure; the last answer is
//                                 used only when Azure cannot answer
//
// "Cannot answer" is a BlobStoreError; a definite "not there" from Azure is
// always believed (and forgotten here), so deletions take effect.
import { Readable } from 'node:stream';
import { BlobStoreError, type BlobInfo, type BlobStore, type BlobWriter, type ByteRange, type DeleteBatchOptions, type StoredFile } from './blob-store.ts';
import type { DiskBlobCache } from './disk-blob-cache.ts';
import { tryParseDigest, type Digest } from '../references.ts';

/** How long a repository link seen in Azure is trusted without asking again. */
const MEMBERSHIP_FRESH_MS = 60_000;
/** Links remembered at most (oldest forgotten first); about 200 bytes each. */
const MAX_REMEMBERED = 100_000;
/**
 * How long a blob's size, just read from Azure by stat, serves the read that
 * follows it (a GET asks stat for its headers, then reads): one Azure request
 * less before the first byte of a cold pull. Blob data never changes; a blob
 * gc deletes within this window fails the read as it would a moment later.
 */
const BLOB_STAT_REUSE_MS = 5_000;
/** Blob sizes kept for that (the newest; about 150 bytes each). */
const MAX_BLOB_STATS = 1_000;
/** Small objects read whole (manifests) are cached on disk too, up to this size. */
const MAX_CACHED_CONTENT = 4 * 1024 * 1024;

const BLOB_DATA = /^\/docker\/registry\/v2\/blobs\/([a-z0-9]+)\/[0-9a-f]{2}\/([0-9a-f]+)\/data$/;
const MEMBERSHIP_LINK = /\/(?:_layers|_manifests\/revisions)\/[a-z0-9]+\/[0-9a-f]+\/link$/;

interface Remembered {
  readonly info: BlobInfo;
  readonly content: Buffer | null;
  readonly seenAt: number;
}

export class CachingBlobStore implements BlobStore {
  readonly #inner: BlobStore;
  readonly #cache: DiskBlobCache;
  readonly #links = new Map<string, Remembered>();
  readonly #blobStats = new Map<string, { readonly info: BlobInfo; readonly at: number }>();

  constructor(inner: BlobStore, cache: DiskBlobCache) {
    this.#inner = inner;
    this.#cache = cache;
  }

  async stat(path: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    const digest = this.#blobDigest(path);
    if (digest) return this.#cache.lookup(digest) ?? this.#statBlob(path, signal);
    const known = this.#links.get(path);
    if (known && MEMBERSHIP_LINK.test(path) && Date.now() - known.seenAt < MEMBERSHIP_FRESH_MS) return known.info;
    try {
      const info = await this.#inner.stat(path, signal);
      if (info) this.#remember(path, info, known?.content ?? null);
      else this.#links.delete(path);
      return info;
    } catch (err) {
      if (err instanceof BlobStoreError && known) return known.info;
      throw err;
    }
  }

  async getContent(path: string, signal?: AbortSignal): Promise<Buffer | null> {
    const digest = this.#blobDigest(path);
    if (digest) return this.#blobContent(path, digest, signal);
    try {
      const content = await this.#inner.getContent(path, signal);
      if (content) this.#remember(path, { size: content.length, modified: new Date() }, content);
      else this.#links.delete(path);
      return content;
    } catch (err) {
      const known = this.#links.get(path);
      if (err instanceof BlobStoreError && known?.content) return known.content;
      throw err;
    }
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    await this.#inner.putContent(path, content);
    if (!this.#blobDigest(path)) this.#remember(path, { size: content.length, modified: new Date() }, content);
  }

  async read(path: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable | null> {
    const digest = this.#blobDigest(path);
    if (!digest) return this.#inner.read(path, range, signal);
    const cached = await this.#cache.open(digest, range);
    if (cached) return cached;
    const info = this.#recentBlobStat(path) ?? await this.#inner.stat(path, signal);
    if (!info) return null;
    // A whole blob streams to the client while it fills the cache: one Azure read, no wait for the fill.
    const teed = range ? null : this.#cache.fillWhileReading(digest, info.size, () => this.#inner.read(path));
    if (teed) return teed;
    // No signal for the fill: it serves every request waiting for this blob, not only this one.
    // A failing cache disk must not fail the pull: only a storage failure is the client's answer.
    const filled = await this.#cache.fill(digest, info.size, () => this.#inner.read(path)).catch((err: unknown) => {
      if (err instanceof BlobStoreError) throw err;
      return null;
    });
    return (filled ? await this.#cache.open(digest, range, false) : null) ?? this.#inner.read(path, range, signal);
  }

  /**
   * Storage's URL for blob data this node's cache does not hold; null for a
   * cached blob, served from the disk without asking Azure. A redirected read
   * does not fill the cache: the bytes never pass through this node.
   */
  async readUrl(path: string, expiresOn: Date): Promise<string | null> {
    const digest = this.#blobDigest(path);
    if (digest && this.#cache.lookup(digest)) return null;
    return this.#inner.readUrl?.(path, expiresOn) ?? null;
  }

  writer(path: string, signal?: AbortSignal): BlobWriter {
    return this.#inner.writer(path, signal);
  }

  get maxCopySize(): number {
    return this.#inner.maxCopySize;
  }

  /** Storage's own copy; a destination under blobs/ is filled into the cache on its first read, as any blob. */
  copy(source: string, destination: string, signal?: AbortSignal): Promise<boolean> {
    return this.#inner.copy(source, destination, signal);
  }

  list(dir: string): Promise<string[]> {
    return this.#inner.list(dir);
  }

  walk(dir: string): AsyncIterable<StoredFile> {
    return this.#inner.walk(dir);
  }

  /** Always asks storage: the write paths use it to learn what Azure really holds, whatever this node remembers. */
  async touch(path: string): Promise<boolean> {
    const found = await this.#inner.touch(path);
    if (!found) this.#links.delete(path);
    return found;
  }

  async delete(path: string): Promise<boolean> {
    this.#links.delete(path);
    return this.#inner.delete(path);
  }

  async deleteBatch(paths: readonly string[], options?: DeleteBatchOptions): Promise<string[]> {
    const removed = await this.#inner.deleteBatch(paths, options);
    for (const path of removed) this.#links.delete(path);
    return removed;
  }

  async #statBlob(path: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    const info = await this.#inner.stat(path, signal);
    if (info) {
      if (this.#blobStats.size >= MAX_BLOB_STATS) this.#blobStats.delete(this.#blobStats.keys().next().value!);
      this.#blobStats.set(path, { info, at: Date.now() });
    }
    return info;
  }

  #recentBlobStat(path: string): BlobInfo | null {
    const seen = this.#blobStats.get(path);
    this.#blobStats.delete(path);
    return seen && Date.now() - seen.at < BLOB_STAT_REUSE_MS ? seen.info : null;
  }

  async #blobContent(path: string, digest: Digest, signal?: AbortSignal): Promise<Buffer | null> {
    const cached = await this.#cache.open(digest);
    if (cached) return readAll(cached);
    const content = await this.#inner.getContent(path, signal);
    if (content && content.length <= MAX_CACHED_CONTENT) {
      await this.#cache.fill(digest, content.length, async () => Readable.from([content])).catch(() => null);
    }
    return content;
  }

  #blobDigest(path: string): Digest | null {
    const match = BLOB_DATA.exec(path);
    return match ? tryParseDigest(`${match[1]}:${match[2]}`) : null;
  }

  #remember(path: string, info: BlobInfo, content: Buffer | null): void {
    this.#links.delete(path);
    if (this.#links.size >= MAX_REMEMBERED) this.#links.delete(this.#links.keys().next().value!);
    this.#links.set(path, { info, content, seenAt: Date.now() });
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
