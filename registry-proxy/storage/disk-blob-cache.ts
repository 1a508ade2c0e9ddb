// The node's on-disk blob cache. Blobs are immutable (their name is their
// digest), so a cached copy never goes stale: repeat pulls are served from
// here without touching Azure. Bounded by `--cache-size`, least recently used
// first out. Concurrent requests for one uncached blob share one fill
// (single flight), so Azure is read once. A fill is verified against the
// digest before it becomes a cache entry; a crash mid-fill leaves only a
// temporary file, removed at the next start.
import { randomUUID } from 'node:crypto';
import { createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from '../../common/logger.ts';
import type { ByteRange } from './blob-store.ts';
import { DigestHasher } from './content-digest.ts';
import { tryParseDigest, type Digest } from '../references.ts';

export interface CachedBlob {
  readonly size: number;
  readonly modified: Date;
}

export class DiskBlobCache {
  readonly #dir: string;
  readonly #maxBytes: number;
  readonly #log: Logger;
  /** digest → entry, in least-recently-used-first order (a Map keeps insertion order). */
  readonly #entries = new Map<string, CachedBlob>();
  readonly #fills = new Map<string, Promise<CachedBlob | null>>();
  #bytes = 0;
  fills = 0;
  /** Reads (open) the cache answered, and did not; blobs evicted. For metrics. */
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(dir: string, maxBytes: number, log: Logger) {
    this.#dir = dir;
    this.#maxBytes = maxBytes;
    this.#log = log.child({ component: 'blob-cache' });
  }

  get bytes(): number {
    return this.#bytes;
  }

  get entries(): number {
    return this.#entries.size;
  }

  /** Indexes what an earlier run left (oldest use first), drops unfinished fills, trims to size. */
  async start(): Promise<void> {
    const found: { digest: string; size: number; used: number; modified: Date }[] = [];
    for (const algorithm of ['sha256', 'sha512']) {
      const root = join(this.#dir, algorithm);
      await mkdir(root, { recursive: true });
      for (const prefix of await readdir(root)) {
        for (const file of await readdir(join(root, prefix)).catch(() => [] as string[])) {
          const path = join(root, prefix, file);
          const digest = tryParseDigest(`${algorithm}:${file}`);
          if (!digest) {
            await rm(path, { force: true });
            continue;
          }
          const info = await stat(path);
          found.push({ digest: digest.value, size: info.size, used: info.mtimeMs, modified: info.mtime });
        }
      }
    }
    for (const entry of found.sort((a, b) => a.used - b.used)) {
      this.#entries.set(entry.digest, { size: entry.size, modified: entry.modified });
      this.#bytes += entry.size;
    }
    await this.#evict();
    this.#log.info({ entries: this.#entries.size, bytes: this.#bytes, maxBytes: this.#maxBytes }, 'blob cache ready');
  }

  /** The cached blob's size, marking it recently used; null when not cached. */
  lookup(digest: Digest): CachedBlob | null {
    const entry = this.#entries.get(digest.value);
    if (!entry) return null;
    this.#entries.delete(digest.value);
    this.#entries.set(digest.value, entry);
    // The file's mtime is the use order a restarted registry rebuilds from.
    const now = new Date();
    void utimes(this.#path(digest), now, now).catch(() => {});
    return entry;
  }

  /**
   * Opens the cached bytes (a range of them); null when not cached or evicted
   * meanwhile. The file is opened before resolving, so a later eviction cannot
   * cut the read short. `counted`: false for the read that follows a fill
   * (the miss was counted already).
   */
  async open(digest: Digest, range?: ByteRange, counted = true): Promise<ReadStream | null> {
    if (!this.#entries.has(digest.value)) {
      if (counted) this.misses++;
      return null;
    }
    try {
      const handle = await open(this.#path(digest), 'r');
      if (counted) this.hits++;
      return handle.createReadStream({ start: range?.start, end: range?.end, highWaterMark: 256 * 1024 });
    } catch {
      if (counted) this.misses++;
      return null;
    }
  }

  /**
   * Fills the cache with the blob from `source` (called at most once per digest
   * at a time: concurrent callers wait for the same fill). Returns the entry, or
   * null when the blob does not fit the cache or the source has nothing.
   */
  fill(digest: Digest, size: number, source: () => Promise<Readable | null>): Promise<CachedBlob | null> {
    const cached = this.lookup(digest);
    if (cached) return Promise.resolve(cached);
    if (size > this.#maxBytes) return Promise.resolve(null);
    let fill = this.#fills.get(digest.value);
    if (!fill) {
      fill = this.#fill(digest, source).finally(() => this.#fills.delete(digest.value));
      this.#fills.set(digest.value, fill);
    }
    return fill;
  }

  /**
   * Fills the cache like `fill`, and returns the blob's bytes as they arrive,
   * so one read of Azure serves the caller and the cache and the first bytes
   * go out at once. The last chunk is held back until the whole blob matches
   * its digest: a mismatch cuts the stream instead of ending it. Null when the
   * blob is cached, being filled already, or does not fit (use `fill` then).
   */
  fillWhileReading(digest: Digest, size: number, source: () => Promise<Readable | null>): Readable | null {
    if (this.#entries.has(digest.value) || this.#fills.has(digest.value) || size > this.#maxBytes) return null;
    const copy = new PassThrough({ highWaterMark: 1024 * 1024 });
    const fill = this.#fill(digest, source, copy).finally(() => this.#fills.delete(digest.value));
    this.#fills.set(digest.value, fill);
    // Once every verified byte was handed over (ended), the reader's answer is
    // complete whatever becomes of the cache entry.
    fill.then((entry) => {
      if (!entry && !copy.writableEnded) copy.destroy(new Error(`blob ${digest.value} vanished from storage`));
    }, (err: unknown) => {
      if (!copy.writableEnded) copy.destroy(err as Error);
    });
    return copy;
  }

  async #fill(digest: Digest, source: () => Promise<Readable | null>, copy?: PassThrough): Promise<CachedBlob | null> {
    const input = await source();
    if (!input) return null;
    this.fills++;
    const final = this.#path(digest);
    const temporary = `${final}.${randomUUID()}.tmp`;
    await mkdir(join(this.#dir, digest.algorithm, digest.hex.slice(0, 2)), { recursive: true });
    const hasher = new DigestHasher(digest.algorithm);
    // A reader that went away does not stop the fill: the next pull finds the blob cached.
    const send = async (chunk: Buffer) => {
      if (copy && !copy.destroyed && !copy.write(chunk)) await Promise.race([once(copy, 'drain'), once(copy, 'close')]);
    };
    let held: Buffer | null = null;
    try {
      await pipeline(input, async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          hasher.update(chunk);
          if (held) await send(held);
          held = chunk;
          yield chunk;
        }
      }, createWriteStream(temporary, { highWaterMark: 1024 * 1024 }));
      if (hasher.digest() !== digest.value) throw new Error(`cache fill of ${digest.value} does not match its digest`);
    } catch (err) {
      await rm(temporary, { force: true });
      throw err;
    }
    // Cached before the reader gets its last byte, so its next request finds
    // the blob here; a failure to keep it costs the cache, never the reader.
    const kept = await rename(temporary, final).then(() => true, async (err: unknown) => {
      this.#log.warn({ digest: digest.value, err: (err as Error).message }, 'cache fill not kept');
      await rm(temporary, { force: true });
      return false;
    });
    const entry = { size: hasher.size, modified: new Date() };
    if (kept) {
      this.#entries.set(digest.value, entry);
      this.#bytes += entry.size;
      this.#log.info({ digest: digest.value, size: entry.size }, 'cache fill');
    }
    if (held) await send(held);
    copy?.end();
    if (!kept) throw new Error(`cache fill of ${digest.value} could not be kept`);
    await this.#evict();
    return entry;
  }

  /** Removes least recently used blobs until the cache fits its bound. */
  async #evict(): Promise<void> {
    for (const [key, entry] of this.#entries) {
      if (this.#bytes <= this.#maxBytes) return;
      this.#entries.delete(key);
      this.#bytes -= entry.size;
      this.evictions++;
      await rm(this.#path(tryParseDigest(key)!), { force: true });
    }
  }

  #path(digest: Digest): string {
    return join(this.#dir, digest.algorithm, digest.hex.slice(0, 2), digest.hex);
  }
}
