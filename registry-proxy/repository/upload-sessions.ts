// Blob uploads in progress (POST, then PATCH chunks, then PUT with the digest).
//
// A chunked upload learns its digest — hence its final path — only at the PUT,
// and a BlockBlob's blocks can only be committed into the blob they were
// staged on. So each chunk goes two ways as it arrives, hashed once:
//   - to the node's disk (`--upload-dir`; the client is on this node: the
//     registry listens on localhost): the upload's durable record, which
//     survives a registry restart — a session unknown in memory is loaded from
//     `<upload-dir>/<uuid>/` and its hash rebuilt from the bytes on disk, so
//     the client can ask for the upload's status and resume;
//   - to Azure, as blocks of a staging blob under the repository's
//     `_uploads/<uuid>/` (distribution's place for upload state), while the
//     bytes arrive rather than after the last one. At the PUT, once the digest
//     is verified, the staging blob is committed and copied inside Azure to
//     the digest's path (one synchronous request, the destination whole or
//     absent), then removed.
// Staging is only a shortcut: a session resumed from disk, one whose staging
// failed (Azure refused a block, the copy was refused) or that outgrew what a
// copy takes, completes as before: the spool streams into blocks staged at
// the final path, verified again before the commit. Between requests the
// staging writer holds no bytes (each PATCH ends with a flush), so idle
// sessions cost no memory. An upload whose digest is known up front (POST
// ?digest=, or POST then PUT with the whole body) never touches the disk: it
// streams straight into blocks at the final path.
//
// Nothing staged is visible under a content address before its digest is
// verified; a staging blob a dead node left behind is committed at most for
// the instant between commit and copy, and `tug registry gc` removes
// `_uploads/` objects older than --upload-expiry.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Logger } from '../../common/logger.ts';
import type { BlobWriter } from '../storage/blob-store.ts';
import { DigestHasher } from '../storage/content-digest.ts';
import type { Digest } from '../references.ts';
import { RegistryError } from '../registry-errors.ts';
import type { RepositoryBlobs } from './repository-blobs.ts';
import { StreamedPart } from '../storage/streamed-part.ts';

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
  /** The bytes so far, staged in storage as they arrived; null once staging was given up (see the module comment). */
  staging: BlobWriter | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #spooled = 0;

  constructor(id: string, repository: string, startedAt: Date, dir: string) {
    this.id = id;
    this.repository = repository;
    this.startedAt = startedAt;
    this.dir = dir;
  }

  /**
   * Bytes the spool holds: what a status reports, and what a restarted
   * registry finds. The hash runs ahead of it while a chunk is being written.
   */
  get size(): number {
    return this.#spooled;
  }

  /** Counts bytes the spool file has taken. */
  spooled(bytes: number): void {
    this.#spooled += bytes;
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
    session.staging = this.#blobs.stagingWriter(repository, id);
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

  /**
   * Appends a chunk to the spool and to the staging blob, hashing as it goes.
   * A chunk of known `length` streams into staged blocks as it arrives, with
   * nothing buffered here; one of unknown length is gathered into blocks of
   * --block-size. Bytes received before a client disconnects are kept (on
   * disk; a streamed block cut short gives the staging up).
   */
  async append(session: UploadSession, source: AsyncIterable<Buffer>, length: number | null = null): Promise<void> {
    // Writes queue up to SPOOL_BUFFER instead of each chunk waiting for its own
    // write: the request is read at the pace of Azure and the disk, not of one
    // disk round trip per chunk.
    const spool = createWriteStream(session.dataPath, { flags: 'a', highWaterMark: SPOOL_BUFFER });
    const spooled = finished(spool);
    spooled.catch(() => {});
    const part = await this.#startPart(session, length);
    let received = false;
    try {
      for await (const chunk of source) {
        if (spool.errored) throw spool.errored;
        const full = !spool.write(chunk, (err) => { if (!err) session.spooled(chunk.length); });
        session.hasher.update(chunk);
        await Promise.all([full ? once(spool, 'drain') : null, part ? part.feed(chunk) : this.#stage(session, chunk)]);
      }
      received = true;
      spool.end();
      await spooled;
    } catch (err) {
      // The spool and the in-memory hash must describe the same bytes; if a
      // write failed half-way, rebuild the session from disk on next use.
      if (spool.errored) {
        this.#sessions.delete(session.id);
        await this.#dropStaging(session);
      }
      throw err;
    } finally {
      // A client gone mid-chunk: what arrived is written before the request ends.
      spool.end();
      await spooled.catch(() => {});
      if (part) {
        await part.end(received);
        if (!part.ok) {
          if (received) this.#log.warn({ component: 'uploads', upload: session.id, err: (part.failure as Error).message }, 'staging in storage failed; the upload completes from its spool');
          await this.#dropStaging(session);
        }
      } else if (session.staging) {
        await session.staging.flush().catch(() => this.#dropStaging(session));
      }
    }
  }

  /**
   * Completes the upload as `digest`: verifies the spooled bytes, streams them
   * into the blob store (verified again while streaming, committed only if they
   * match) and links the blob into the repository. A wrong digest ends the
   * session with nothing stored; a storage failure keeps it, so the client can retry.
   */
  async complete(session: UploadSession, digest: Digest, finalChunk: AsyncIterable<Buffer> | null, finalLength: number | null, signal?: AbortSignal): Promise<void> {
    if (finalChunk && session.size === 0) {
      // POST then PUT with the whole body: no reason to spool or stage it first.
      await this.#dropStaging(session);
      await this.#ending(session, () => this.#blobs.storeVerified(digest, finalChunk, signal, finalLength));
    } else {
      if (finalChunk) await this.append(session, finalChunk, finalLength);
      const computed = digest.algorithm === 'sha256' ? session.hasher.digest() : await this.#hashFile(session, digest);
      if (computed !== digest.value) {
        await this.cancel(session);
        throw new RegistryError('DIGEST_INVALID', undefined, { detail: { expected: digest.value, computed } });
      }
      if (!(await this.#storeStaged(session, digest, signal))) {
        const spooled = (await stat(session.dataPath)).size;
        await this.#blobs.storeVerified(digest, createReadStream(session.dataPath, { highWaterMark: 1024 * 1024 }), signal, spooled);
      }
    }
    await this.#blobs.link(session.repository, digest);
    // The spool's removal (tens of ms for a large layer) does not hold up the
    // client's answer; what a crash leaves, the purge of expired uploads removes.
    void this.cancel(session).catch(() => {});
  }

  /** Ends the session and removes its spool; its staged blocks were never committed, and Azure drops them. */
  async cancel(session: UploadSession): Promise<void> {
    session.ended = true;
    this.#sessions.delete(session.id);
    await this.#dropStaging(session);
    await rm(session.dir, { recursive: true, force: true });
  }

  /** Removes spools of sessions started more than `maxAgeMs` ago (abandoned uploads). Returns how many. */
  async purge(maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const id of await readdir(this.#dir).catch(() => [] as string[])) {
      if (!UUID.test(id)) continue;
      const startedAt = await this.#startedAt(id);
      if (startedAt !== null && Date.now() - startedAt.getTime() <= maxAgeMs) continue;
      const open = await this.#sessions.get(id)?.catch(() => null);
      if (open) await this.#dropStaging(open);
      this.#sessions.delete(id);
      await rm(join(this.#dir, id), { recursive: true, force: true });
      removed++;
    }
    if (removed > 0) this.#log.info({ component: 'uploads', removed }, 'purged abandoned uploads');
    return removed;
  }

  /** A chunk of known length, streamed into staged blocks as it arrives; null when it is not staged that way. */
  async #startPart(session: UploadSession, length: number | null): Promise<StreamedPart | null> {
    const staging = session.staging;
    if (!staging || length === null || length <= 0) return null;
    if (staging.size + length > this.#blobs.maxStagedSize) {
      await this.#dropStaging(session);
      return null;
    }
    return new StreamedPart(staging, length);
  }

  /** Stages `chunk` too, unless staging was given up; a failure gives it up (the spool has the bytes). */
  async #stage(session: UploadSession, chunk: Buffer): Promise<void> {
    const staging = session.staging;
    if (!staging) return;
    if (staging.size + chunk.length > this.#blobs.maxStagedSize) {
      await this.#dropStaging(session);
      return;
    }
    try {
      await staging.write(chunk);
    } catch (err) {
      this.#log.warn({ component: 'uploads', upload: session.id, err: (err as Error).message }, 'staging in storage failed; the upload completes from its spool');
      await this.#dropStaging(session);
    }
  }

  /** Completes from the staged copy; false when there is none or it could not be used (the caller writes the spool). */
  async #storeStaged(session: UploadSession, digest: Digest, signal?: AbortSignal): Promise<boolean> {
    const staging = session.staging;
    session.staging = null;
    if (!staging || staging.size !== session.size) {
      await staging?.cancel();
      return false;
    }
    try {
      return await this.#blobs.storeStaged(digest, session.repository, session.id, staging, signal);
    } catch (err) {
      this.#log.warn({ component: 'uploads', upload: session.id, err: (err as Error).message }, 'completing from the staged copy failed; writing the spool instead');
      return false;
    }
  }

  async #dropStaging(session: UploadSession): Promise<void> {
    const staging = session.staging;
    session.staging = null;
    await staging?.cancel().catch(() => {});
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
    session.spooled(session.hasher.size);
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

/** Bytes of a chunk queued for the spool file before reading the request waits for the disk. */
const SPOOL_BUFFER = 1024 * 1024;

function unknownUpload(id: string): RegistryError {
  return new RegistryError('BLOB_UPLOAD_UNKNOWN', undefined, { detail: { upload: id.slice(0, 100) } });
}
