// Manifests, tags and referrers of a repository, on the distribution layout:
// manifest bytes are blobs, `_manifests/revisions` links put them in a
// repository, `_manifests/tags/<tag>` points a tag at one, and Tug's
// `_manifests/referrers` index finds the manifests whose `subject` is a digest.
// Writes go data first, links after, so a crash never leaves a link to nothing.
import type { BlobStore } from '../storage/blob-store.ts';
import { parseManifest, type ManifestDocument } from './manifest-document.ts';
import { tryParseDigest, type Digest } from '../references.ts';
import { StoragePaths } from '../storage/storage-paths.ts';

export interface StoredManifest {
  readonly digest: Digest;
  readonly content: Buffer;
}

/** Parsed manifests kept in memory: they are immutable, and the referrers API reads them often. */
const DOCUMENT_CACHE_ENTRIES = 2048;

export class RepositoryManifests {
  readonly #store: BlobStore;
  readonly #documents = new Map<string, ManifestDocument>();

  constructor(store: BlobStore) {
    this.#store = store;
  }

  /** The digest a tag points at, or null. */
  async resolveTag(name: string, tag: string, signal?: AbortSignal): Promise<Digest | null> {
    const link = await this.#store.getContent(StoragePaths.tagCurrentLink(name, tag), signal);
    return link ? tryParseDigest(link.toString('utf8').trim()) : null;
  }

  /** Whether the manifest is in the repository. */
  async exists(name: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    return (await this.#store.stat(StoragePaths.manifestRevisionLink(name, digest), signal)) !== null;
  }

  /** exists, asked of storage and renewed (link and bytes), for a push that is about to rely on it. */
  async renew(name: string, digest: Digest): Promise<boolean> {
    // Both at once (two round trips side by side); renewing the bytes of a manifest not in the repository is harmless.
    const [linked, stored] = await Promise.all([this.#store.touch(StoragePaths.manifestRevisionLink(name, digest)), this.#store.touch(StoragePaths.blobData(digest))]);
    return linked && stored;
  }

  /** The manifest's bytes when it is in the repository, else null. */
  async read(name: string, digest: Digest, signal?: AbortSignal): Promise<StoredManifest | null> {
    // The bytes are read while the link is asked for (one round trip less), and used only if it is there.
    const reading = this.#store.getContent(StoragePaths.blobData(digest), signal);
    reading.catch(() => {});
    if (!(await this.exists(name, digest, signal))) return null;
    const content = await reading;
    return content ? { digest, content } : null;
  }

  /** Stores a validated manifest and links it (and, with `tag`, points the tag at it). */
  async put(name: string, digest: Digest, content: Buffer, doc: ManifestDocument, tag: string | null): Promise<void> {
    // Always written, never "already there?": a node's cache may remember bytes
    // garbage collection has deleted, and a fresh write is safe from a gc running now.
    await this.#store.putContent(StoragePaths.blobData(digest), content);
    const link = Buffer.from(digest.value);
    await this.#store.putContent(StoragePaths.manifestRevisionLink(name, digest), link);
    if (doc.subject) await this.#store.putContent(StoragePaths.referrerLink(name, doc.subject.digest, digest), link);
    if (tag !== null) {
      await this.#store.putContent(StoragePaths.tagIndexLink(name, tag, digest), link);
      await this.#store.putContent(StoragePaths.tagCurrentLink(name, tag), link);
    }
    this.#remember(digest, doc);
  }

  /** Removes a tag; the manifest stays. False when there was no such tag. */
  async deleteTag(name: string, tag: string): Promise<boolean> {
    const current = await this.#store.delete(StoragePaths.tagCurrentLink(name, tag));
    for await (const file of this.#store.walk(StoragePaths.tagDir(name, tag))) await this.#store.delete(file.path);
    return current;
  }

  /**
   * Removes the manifest from the repository, with every tag that points at it
   * (as distribution does) and its referrers-index entry. The bytes stay until
   * garbage collection.
   */
  async delete(name: string, manifest: StoredManifest): Promise<void> {
    const doc = this.document(manifest);
    for (const tag of await this.tags(name)) {
      const current = await this.resolveTag(name, tag);
      if (current?.value === manifest.digest.value) await this.deleteTag(name, tag);
    }
    if (doc?.subject) await this.#store.delete(StoragePaths.referrerLink(name, doc.subject.digest, manifest.digest));
    await this.#store.delete(StoragePaths.manifestRevisionLink(name, manifest.digest));
  }

  /** Every tag of the repository, sorted. */
  tags(name: string): Promise<string[]> {
    return this.#store.list(StoragePaths.tagsDir(name));
  }

  /** Whether anything of the repository is stored. */
  async repositoryExists(name: string): Promise<boolean> {
    return (await this.#store.list(StoragePaths.repository(name))).length > 0;
  }

  /** The manifests of the repository that name `subject` as their subject, still present, in digest order. */
  async referrers(name: string, subject: Digest, signal?: AbortSignal): Promise<{ manifest: StoredManifest; doc: ManifestDocument }[]> {
    const found: { manifest: StoredManifest; doc: ManifestDocument }[] = [];
    const dir = StoragePaths.referrersDir(name, subject);
    for await (const file of this.#store.walk(dir)) {
      const match = /\/([a-z0-9]+)\/([a-f0-9]+)\/link$/.exec(file.path.slice(dir.length));
      const digest = match ? tryParseDigest(`${match[1]}:${match[2]}`) : null;
      if (!digest) continue;
      // An entry outlives its manifest when the manifest was deleted by another registry.
      const manifest = await this.read(name, digest, signal);
      const doc = manifest ? this.document(manifest) : null;
      if (manifest && doc?.subject?.digest.value === subject.value) found.push({ manifest, doc });
    }
    return found;
  }

  /** The parsed form of a stored manifest, or null when it does not parse (the registry still serves its bytes). */
  document(manifest: StoredManifest): ManifestDocument | null {
    const cached = this.#documents.get(manifest.digest.value);
    if (cached) return cached;
    try {
      const doc = parseManifest(manifest.content);
      this.#remember(manifest.digest, doc);
      return doc;
    } catch {
      return null;
    }
  }

  #remember(digest: Digest, doc: ManifestDocument): void {
    if (this.#documents.size >= DOCUMENT_CACHE_ENTRIES) this.#documents.delete(this.#documents.keys().next().value!);
    this.#documents.set(digest.value, doc);
  }
}
