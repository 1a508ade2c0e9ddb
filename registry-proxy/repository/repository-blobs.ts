// Blobs as repositories see them: the content-addressed store shared by all
// repositories, and the `_layers` links that make a blob part of one. A blob is
// committed only after its digest has been verified over every byte.
import type { Readable } from 'node:stream';
import type { BlobInfo, BlobStore, BlobWriter, ByteRange } from '../storage/blob-store.ts';
import { DigestHasher } from '../storage/content-digest.ts';
import type { Digest } from '../references.ts';
import { RegistryError } from '../registry-errors.ts';
import { StoragePaths } from '../storage/storage-paths.ts';
import { StreamedPart } from '../storage/streamed-part.ts';

export class RepositoryBlobs {
  readonly #store: BlobStore;

  constructor(store: BlobStore) {
    this.#store = store;
  }

  /** The blob's size, or null when the registry does not hold it at all. */
  stat(digest: Digest, signal?: AbortSignal): Promise<BlobInfo | null> {
    return this.#store.stat(StoragePaths.blobData(digest), signal);
  }

  open(digest: Digest, range?: ByteRange, signal?: AbortSignal): Promise<Readable | null> {
    return this.#store.read(StoragePaths.blobData(digest), range, signal);
  }

  /**
   * A URL the client may read the blob's bytes from itself until `expiresOn`
   * (storage's, read-only, for this blob alone); null when they are served
   * through the registry (the node's cache holds them, or storage makes no
   * such URL). Asked only once the blob is known to be stored.
   */
  async readUrl(digest: Digest, expiresOn: Date, _signal?: AbortSignal): Promise<string | null> {
    return (await this.#store.readUrl?.(StoragePaths.blobData(digest), expiresOn)) ?? null;
  }

  /**
   * Whether `name` may serve the blob: it was pushed or mounted into the
   * repository (`_layers`), or it is one of the repository's manifests.
   */
  async isLinked(name: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    // Both asked at once: a blob a client is about to push is in neither, and
    // each answer is an Azure round trip (skopeo asks twice per layer). One
    // link found is enough, even when the other could not be asked (Azure
    // down, the node cache answering for the first).
    const answers = await Promise.allSettled([
      this.#store.stat(StoragePaths.layerLink(name, digest), signal),
      this.#store.stat(StoragePaths.manifestRevisionLink(name, digest), signal),
    ]);
    if (answers.some((a) => a.status === 'fulfilled' && a.value !== null)) return true;
    const failed = answers.find((a) => a.status === 'rejected');
    if (failed) throw failed.reason;
    return false;
  }

  /**
   * The blob's size when `name` may serve it (isLinked), else null. The size
   * is asked for while the links are (one round trip less before a GET's first
   * byte), and used only once a link is confirmed.
   */
  async linkedStat(name: string, digest: Digest, signal?: AbortSignal): Promise<BlobInfo | null> {
    const sized = this.stat(digest, signal);
    sized.catch(() => {});
    return (await this.isLinked(name, digest, signal)) ? sized : null;
  }

  /**
   * Whether storage itself (never a node's cache) holds the blob, renewing it
   * so a garbage collection running now cannot delete it: what a push reuses
   * goes through here.
   */
  renew(digest: Digest): Promise<boolean> {
    return this.#store.touch(StoragePaths.blobData(digest));
  }

  /** isLinked, asked of storage and renewed, for a push that is about to rely on the link. */
  async renewLink(name: string, digest: Digest): Promise<boolean> {
    return (await this.#store.touch(StoragePaths.layerLink(name, digest))) || this.#store.touch(StoragePaths.manifestRevisionLink(name, digest));
  }

  async link(name: string, digest: Digest): Promise<void> {
    await this.#store.putContent(StoragePaths.layerLink(name, digest), Buffer.from(digest.value));
  }

  /** Removes the blob from the repository (the bytes stay until garbage collection). */
  unlink(name: string, digest: Digest): Promise<boolean> {
    return this.#store.delete(StoragePaths.layerLink(name, digest));
  }

  /** The largest upload that can be staged and copied into place (storeStaged). */
  get maxStagedSize(): number {
    return this.#store.maxCopySize;
  }

  /**
   * A writer staging the bytes of upload `uploadId` in storage as they arrive
   * (under the repository's `_uploads/`, outside the content-addressed store),
   * before the digest that names them is known.
   */
  stagingWriter(name: string, uploadId: string): BlobWriter {
    return this.#store.writer(StoragePaths.uploadData(name, uploadId));
  }

  /**
   * Puts what `staged` (a stagingWriter) holds at `digest`'s path with a copy
   * inside storage, the caller having verified those very bytes against
   * `digest`. True when the blob is stored; false when the copy could not be
   * made, and the caller must write the bytes itself. The copy replaces a blob
   * already there by the same bytes, which also renews it against garbage
   * collection (no separate renew: a request less on every push). The staged
   * object is removed in the background; what a crash leaves, gc removes.
   */
  async storeStaged(digest: Digest, name: string, uploadId: string, staged: BlobWriter, signal?: AbortSignal): Promise<boolean> {
    const stagedPath = StoragePaths.uploadData(name, uploadId);
    try {
      await staged.commit();
      return await this.#store.copy(stagedPath, StoragePaths.blobData(digest), signal);
    } finally {
      void this.#store.delete(stagedPath).catch(() => {});
    }
  }

  /**
   * Streams `source` into the blob store at `digest`'s path, hashing every byte,
   * and commits only when the content matches `digest`; otherwise nothing
   * becomes visible and DIGEST_INVALID is thrown. When storage already holds
   * the blob (asked of storage, and renewed against garbage collection) the
   * content is still verified, then dropped. With the `length` of `source`
   * known, the bytes stream on to storage with nothing buffered here (else in
   * --block-size blocks). Returns the size.
   */
  async storeVerified(digest: Digest, source: AsyncIterable<Buffer>, signal?: AbortSignal, length: number | null = null): Promise<number> {
    const hasher = new DigestHasher(digest.algorithm);
    const existing = await this.renew(digest);
    const writer = existing ? null : this.#store.writer(StoragePaths.blobData(digest), signal);
    const part = writer && length !== null && length > 0 ? new StreamedPart(writer, length) : null;
    try {
      for await (const chunk of source) {
        hasher.update(chunk);
        if (part) await part.feed(chunk);
        else if (writer) await writer.write(chunk);
        if (part && !part.ok) throw part.failure;
      }
      await part?.end(true);
      if (part && !part.ok) throw part.failure;
    } catch (err) {
      await part?.end(false);
      await writer?.cancel();
      throw err;
    }
    const computed = hasher.digest();
    if (computed !== digest.value) {
      await writer?.cancel();
      throw new RegistryError('DIGEST_INVALID', undefined, { detail: { expected: digest.value, computed } });
    }
    await writer?.commit();
    return hasher.size;
  }
}
