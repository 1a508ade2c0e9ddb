// Blob uploads in progress (POST, then PATCH chunks, then PUT with the digest).
//
// Why the chunks wait on the node's disk and not in Azure: a BlockBlob's
// blocks can only be committed into the blob they were staged on, and a
// chunked upload learns its digest — hence its final path — only at the PUT.
// Staging in Azure under the upload's own name would need a copy to the
// digest path, which is exactly what broke distribution's Azure driver
// (distribution#3935). So chunks are spooled to `--upload-dir` (the client is
// on this node: the registry listens on localhost), hashed as they arrive,
// and the PUT streams the spool into blocks staged at the final path,
// verifying the digest again before committing. An upload whose digest is
// known up front (POST ?digest=, or POST then PUT with the whole body) never
// touches the disk: it streams straight into blocks at the final path.
//
// The spool survives a registry restart: a session unknown in memory is
// loaded from `<upload-dir>/<uuid>/` and its hash rebuilt from the bytes on
// disk, so the client can ask for the upload's status and resume.
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/logger.ts';
import { DigestHasher } from './content-digest.ts';
import type { Digest } from './references.ts';
import { RegistryError } from './registry-errors.ts';
import type { RepositoryBlobs } from './repository-blobs.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class UploadSession {
  readonly id: string;
  readonly repository: string;
  readonly startedAt: Date;
  readonly dir: string;
  /** sha256 of the bytes spooled so far (the digest nearly every client names). */
  readonly hasher = new DigestHasher('sha256');
  /** Set when the upload completed or was cancelled; a request queued behind that finds it gone. */
  ended = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(id: string, repository: string, startedAt: Date, dir: string) {
    this.id = id;
    this.repository = repository;
    this.startedAt = startedAt;
    this.dir = dir;
  }

  get size(): number {
    return this.hasher.size;
  }

  get dataPath(): string {
    return join(this.dir, 'data');
  }

  /** Runs `action` after every earlier action on this session: one request at a time touches the spool. */
  exclusive<T>(action: () => Promise<T>): Promise<T> {
    const guarded = () => (this.ended ? Promise.reject(unknownUpload(this.id)) : action());
    const run = this.#queue.then(guarded, guarded);
    this.#queue = run.catch(() => {});
    return run;
  }
}

export class UploadSessions {
  readonly #dir: string;
  readonly #blobs: RepositoryBlobs;
  readonly #log: Logger;
  readonly #sessions = new Map<string, Promise<UploadSession | null>>();

  constructor(dir: string, blobs: RepositoryBlobs, log: Logger) {
    this.#dir = dir;
    this.#blobs = blobs;
    this.#log = log;
  }

  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
  }

  /** Sessions open in this process (started or resumed, not yet completed, cancelled or purged). */
  get open(): number {
    return this.#sessions.size;
  }

  async create(repository: string): Promise<UploadSession> {
    const id = randomUUID();
    const session = new UploadSession(id, repository, new Date(), join(this.#dir, id));
    await mkdir(session.dir);
    await writeFile(session.dataPath, '');
    await writeFile(join(session.dir, 'upload.json'), JSON.stringify({ repository, startedAt: session.startedAt.toISOString() }));
    this.#sessions.set(id, Promise.resolve(session));
    return session;
  }

  /** The session `id` of `repository`, from memory or from the spool on disk; BLOB_UPLOAD_UNKNOWN otherwise. */
  async get(repository: string, id: string): Promise<UploadSession> {
    if (!UUID.test(id)) throw unknownUpload(id);
    let loading = this.#sessions.get(id);
    if (!loading) {
      loading = this.#load(id);
      this.#sessions.set(id, loading);
      loading.then((s) => { if (!s) this.#sessions.delete(id); }, () => this.#sessions.delete(id));
    }
    const session = await loading;
    if (!session || session.repository !== repository) throw unknownUpload(id);
    return session;
  }

  /** Appends a chunk to the spool, hashing as it goes. Bytes received before a client disconnects are kept. */
  async append(session: UploadSession, source: AsyncIterable<Buffer>): Promise<void> {
    const file = await open(session.dataPath, 'a');
    try {
      for await (const chunk of source) {
        await file.write(chunk);
        session.hasher.update(chunk);
      }
    } catch (err) {
      // The spool and the in-memory hash must describe the same bytes; if a
      // write failed half-way, rebuild the session from disk on next use.
      if ((err as NodeJS.ErrnoException).syscall === 'write') this.#sessions.delete(session.id);
      throw err;
    } finally {
      await file.close();
    }
  }

  /**
   * Completes the upload as `digest`: verifies the spooled bytes, streams them
   * into the blob store (verified again while streaming, committed only if they
   * match) and links the blob into the repository. A wrong digest ends the
   * session with nothing stored; a storage failure keeps it, so the client can retry.
   */
  async complete(session: UploadSession, digest: Digest, finalChunk: AsyncIterable<Buffer> | null, signal?: AbortSignal): Promise<void> {
    if (finalChunk && session.size === 0) {
      // POST then PUT with the whole body: no reason to spool it first.
      await this.#ending(session, () => this.#blobs.storeVerified(digest, finalChunk, signal));
    } else {
      if (finalChunk) await this.append(session, finalChunk);
      const computed = digest.algorithm === 'sha256' ? session.hasher.digest() : await this.#hashFile(session, digest);
      if (computed !== digest.value) {
        await this.cancel(session);
        throw new RegistryError('DIGEST_INVALID', undefined, { detail: { expected: digest.value, computed } });
      }
      await this.#blobs.storeVerified(digest, createReadStream(session.dataPath, { highWaterMark: 1024 * 1024 }), signal);
    }
    await this.#blobs.link(session.repository, digest);
    await this.cancel(session);
  }

  /** Ends the session and removes its spool. */
  async cancel(session: UploadSession): Promise<void> {
    session.ended = true;
    this.#sessions.delete(session.id);
    await rm(session.dir, { recursive: true, force: true });
  }

  /** Removes spools of sessions started more than `maxAgeMs` ago (abandoned uploads). Returns how many. */
  async purge(maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const id of await readdir(this.#dir).catch(() => [] as string[])) {
      if (!UUID.test(id)) continue;
      const startedAt = await this.#startedAt(id);
      if (startedAt !== null && Date.now() - startedAt.getTime() <= maxAgeMs) continue;
      this.#sessions.delete(id);
      await rm(join(this.#dir, id), { recursive: true, force: true });
      removed++;
    }
    if (removed > 0) this.#log.info({ component: 'uploads', removed }, 'purged abandoned uploads');
    return removed;
  }

  async #ending<T>(session: UploadSession, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      if (err instanceof RegistryError && err.code === 'DIGEST_INVALID') await this.cancel(session);
      throw err;
    }
  }

  async #load(id: string): Promise<UploadSession | null> {
    const dir = join(this.#dir, id);
    let meta: { repository?: unknown; startedAt?: unknown };
    try {
      meta = JSON.parse(await readFile(join(dir, 'upload.json'), 'utf8')) as typeof meta;
      await stat(join(dir, 'data'));
    } catch {
      return null;
    }
    if (typeof meta.repository !== 'string' || typeof meta.startedAt !== 'string') return null;
    const session = new UploadSession(id, meta.repository, new Date(meta.startedAt), dir);
    for await (const chunk of createReadStream(session.dataPath, { highWaterMark: 1024 * 1024 })) session.hasher.update(chunk as Buffer);
    this.#log.info({ component: 'uploads', upload: id, repository: session.repository, size: session.size }, 'resumed upload from its spool');
    return session;
  }

  async #hashFile(session: UploadSession, digest: Digest): Promise<string> {
    const hasher = new DigestHasher(digest.algorithm);
    for await (const chunk of createReadStream(session.dataPath, { highWaterMark: 1024 * 1024 })) hasher.update(chunk as Buffer);
    return hasher.digest();
  }

  async #startedAt(id: string): Promise<Date | null> {
    try {
      const meta = JSON.parse(await readFile(join(this.#dir, id, 'upload.json'), 'utf8')) as { startedAt?: string };
      const date = new Date(meta.startedAt ?? '');
      return Number.isNaN(date.getTime()) ? null : date;
    } catch {
      return null;
    }
  }
}

function unknownUpload(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { detail: { upload: id.slice(0, 100) } });
}
