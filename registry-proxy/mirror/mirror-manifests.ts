// Manifests and tags of a pull-through cache (`--proxy-remote`). A manifest
// asked by digest is immutable: once stored it is served from storage for
// ever, and fetched from upstream (checked against its digest) only when
// absent. A tag moves, so it is re-checked upstream (a HEAD, which Docker Hub
// does not count against its pull limit) once its last check is older than
// `--proxy-ttl`; a changed tag fetches and stores the new manifest. When
// upstream cannot answer — down, 5xx, 429 — the stored tag keeps serving,
// with a warning in the log; only with nothing stored does the client see 503
// (or 429). A definite 404 upstream is believed: the tag is gone.
import type { Logger } from '../../common/logger.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import { parseManifest } from '../repository/manifest-document.ts';
import type { Digest } from '../references.ts';
import { RepositoryManifests, type StoredManifest } from '../repository/repository-manifests.ts';
import { UpstreamError } from './upstream-error.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';

const MAX_TAGS_TRACKED = 100_000;

export class MirrorManifests extends RepositoryManifests {
  readonly #upstream: UpstreamRegistry;
  readonly #ttl: number;
  readonly #log: Logger;
  /** `name:tag` → when upstream was last asked about it (or failed to answer). */
  readonly #checked = new Map<string, number>();

  constructor(store: BlobStore, upstream: UpstreamRegistry, ttlMs: number, log: Logger) {
    super(store);
    this.#upstream = upstream;
    this.#ttl = ttlMs;
    this.#log = log.child({ component: 'mirror' });
  }

  override async resolveTag(name: string, tag: string, signal?: AbortSignal): Promise<Digest | null> {
    const key = `${name}:${tag}`;
    const checkedAt = this.#checked.get(key);
    if (checkedAt !== undefined && Date.now() - checkedAt < this.#ttl) return super.resolveTag(name, tag, signal);
    try {
      const digest = await this.#upstream.manifestDigest(name, tag, signal);
      this.#markChecked(key);
      if (digest === null) return null;
      const stored = await super.resolveTag(name, tag, signal);
      if (stored?.value === digest.value && (await this.exists(name, digest, signal))) return digest;
      const manifest = (await super.read(name, digest, signal)) ?? (await this.#fetch(name, digest, signal));
      if (!manifest) return null;
      await this.put(name, digest, manifest.content, parseManifest(manifest.content), tag);
      this.#log.info({ repository: name, tag, digest: digest.value, was: stored?.value ?? null }, 'tag refreshed from upstream');
      return digest;
    } catch (err) {
      if (!(err instanceof UpstreamError)) throw err;
      const stored = await super.resolveTag(name, tag, signal);
      if (!stored) throw err.registryError();
      // Asking again on every pull would only add to the upstream's trouble (or its rate limit): wait a TTL.
      this.#markChecked(key);
      this.#log.warn({ repository: name, tag, digest: stored.value, err: err.message }, 'upstream unavailable; serving the stored tag');
      return stored;
    }
  }

  override async read(name: string, digest: Digest, signal?: AbortSignal): Promise<StoredManifest | null> {
    const stored = await super.read(name, digest, signal);
    if (stored) return stored;
    let manifest: StoredManifest | null;
    try {
      manifest = await this.#fetch(name, digest, signal);
    } catch (err) {
      if (err instanceof UpstreamError) throw err.registryError();
      throw err;
    }
    if (manifest) {
      await this.put(name, digest, manifest.content, parseManifest(manifest.content), null);
      this.#log.info({ repository: name, digest: digest.value, size: manifest.content.length }, 'stored manifest from upstream');
    }
    return manifest;
  }

  async #fetch(name: string, digest: Digest, signal?: AbortSignal): Promise<StoredManifest | null> {
    const fetched = await this.#upstream.manifest(name, digest.value, signal);
    if (!fetched) return null;
    return { digest: fetched.digest, content: fetched.content };
  }

  #markChecked(key: string): void {
    this.#checked.delete(key);
    if (this.#checked.size >= MAX_TAGS_TRACKED) this.#checked.delete(this.#checked.keys().next().value!);
    this.#checked.set(key, Date.now());
  }
}
