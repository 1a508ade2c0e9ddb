// Blobs of a pull-through cache (`--proxy-remote`): what is stored is served
// from storage; what is not is fetched from the upstream registry and streamed
// to the client WHILE it is written to storage, hashed as it goes. The last
// chunk is held back until the digest is verified and the blob committed, so:
//   - a digest mismatch stores nothing, and the client gets a cut connection
//     (fewer bytes than the Content-Length) rather than wrong bytes;
//   - when the client has the whole blob, the next pull finds it stored (an
//     upstream that goes away right after cannot take it back).
// A storage failure mid-way does not fail the pull: the client still gets the
// verified bytes, the blob is just not kept. A range of a blob not stored is
// passed through from upstream and not stored.
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import type { Logger } from '../../common/logger.ts';
import type { BlobInfo, BlobStore, ByteRange, BlobWriter } from '../storage/blob-store.ts';
import { DigestHasher } from '../storage/content-digest.ts';
import type { Digest } from '../references.ts';
import { RepositoryBlobs } from '../repository/repository-blobs.ts';
import { StoragePaths } from '../storage/storage-paths.ts';
import { UpstreamError } from './upstream-error.ts';
import type { UpstreamRegistry } from './upstream-registry.ts';

/** How long an upstream HEAD's answer (the blob exists, its size, its repository) is used for the GET that follows. */
const SEEN_UPSTREAM_MS = 5 * 60_000;
const MAX_SEEN = 10_000;

interface SeenUpstream {
  readonly name: string;
  readonly size: number;
  readonly at: number;
}

export class MirrorBlobs extends RepositoryBlobs {
  readonly #store: BlobStore;
  readonly #upstream: UpstreamRegistry;
  readonly #log: Logger;
  /** Blobs known upstream and not stored: digest → where upstream has it. The handler's GET asks `isLinked` with the name, then `open` without it. */
  readonly #seen = new Map<string, SeenUpstream>();

  constructor(store: BlobStore, upstream: UpstreamRegistry, log: Logger) {
    super(store);
    this.#store = store;
    this.#upstream = upstream;
    this.#log = log.child({ component: 'mirror' });
  }

  override async isLinked(name: string, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    if (await super.isLinked(name, digest, signal)) return true;
    let size: number | null;
    try {
      size = await this.#upstream.blobSize(name, digest, signal);
    } catch (err) {
      if (err instanceof UpstreamError) throw err.registryError();
      throw err;
    }
    if (size === null) return false;
    if (this.#seen.size >= MAX_SEEN) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(digest.value, { name, size, at: Date.now() });
    return true;
  }

  /** In turn, not at once: what stat answers for a blob not stored depends on what isLinked learned upstream. */
  override async linkedStat(name: string, digest: Digest, signal?: AbortSignal): Promise<BlobInfo | null> {
    return (await this.isLinked(name, digest, signal)) ? this.stat(digest, signal) : null;
  }

  override async stat(digest: Digest, signal?: AbortSignal): Promise<BlobInfo | null> {
    const stored = await super.stat(digest, signal);
    if (stored) return stored;
    const seen = this.#fresh(digest);
    return seen ? { size: seen.size, modified: new Date(seen.at) } : null;
  }

  /** None for a blob known upstream and not stored yet: the registry fetches and stores it as it serves it. */
  override async readUrl(digest: Digest, expiresOn: Date, signal?: AbortSignal): Promise<string | null> {
    if (this.#fresh(digest) && !(await super.stat(digest, signal))) return null;
    return super.readUrl(digest, expiresOn, signal);
  }

  override async open(digest: Digest, range?: ByteRange, signal?: AbortSignal): Promise<Readable | null> {
    const seen = this.#fresh(digest);
    // Stored, unless we just learned upstream has it and storage did not (then skip the read that would miss).
    if (!seen || (await super.stat(digest, signal))) return super.open(digest, range, signal);
    let fetched;
    try {
      fetched = await this.#upstream.blob(seen.name, digest, range, signal);
    } catch (err) {
      if (err instanceof UpstreamError) throw err.registryError();
      throw err;
    }
    if (!fetched) return null;
    if (range) return fetched.body;
    this.#seen.delete(digest.value);
    const out = new PassThrough({ highWaterMark: 1024 * 1024 });
    const writer = this.#store.writer(StoragePaths.blobData(digest));
    void this.#tee(seen.name, digest, fetched.body, writer, out);
    return out;
  }

  async #tee(name: string, digest: Digest, upstream: Readable, writer: BlobWriter, out: PassThrough): Promise<void> {
    const hasher = new DigestHasher(digest.algorithm);
    let storing = true;
    let held: Buffer | null = null;
    const send = async (chunk: Buffer) => {
      // A client that went away does not stop the fill: the next pull finds the blob stored.
      if (out.destroyed) return;
      if (!out.write(chunk)) await Promise.race([once(out, 'drain'), once(out, 'close')]);
    };
    const stopStoring = async (err: unknown) => {
      if (!storing) return;
      storing = false;
      this.#log.warn({ digest: digest.value, err: (err as Error).message }, 'cannot store the blob fetched from upstream; serving it without keeping it');
      await writer.cancel().catch(() => {});
    };
    try {
      for await (const chunk of upstream) {
        hasher.update(chunk as Buffer);
        if (storing) await writer.write(chunk as Buffer).catch(stopStoring);
        if (held) await send(held);
        held = chunk as Buffer;
      }
    } catch (err) {
      await stopStoring(err);
      this.#log.warn({ digest: digest.value, err: (err as Error).message }, 'upstream blob stream failed');
      out.destroy(err as Error);
      return;
    }
    const computed = hasher.digest();
    if (computed !== digest.value) {
      if (storing) await writer.cancel().catch(() => {});
      this.#log.error({ repository: name, expected: digest.value, computed, upstream: this.#upstream.origin }, 'upstream blob does not match its digest; nothing stored, client connection cut');
      out.destroy(new Error(`upstream blob ${digest.value} does not match its digest`));
      return;
    }
    if (storing) {
      try {
        await writer.commit();
        await this.link(name, digest);
        this.#log.info({ repository: name, digest: digest.value, size: hasher.size }, 'stored blob from upstream');
      } catch (err) {
        await stopStoring(err);
      }
    }
    if (held) await send(held);
    out.end();
  }

  #fresh(digest: Digest): SeenUpstream | null {
    const seen = this.#seen.get(digest.value);
    if (!seen) return null;
    if (Date.now() - seen.at > SEEN_UPSTREAM_MS) {
      this.#seen.delete(digest.value);
      return null;
    }
    return seen;
  }
}
