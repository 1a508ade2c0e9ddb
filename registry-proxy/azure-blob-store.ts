// The BlobStore on Azure Blob Storage (@azure/storage-blob). Objects are
// BlockBlobs; a writer stages blocks directly at its final path and commits
// the block list there, so there is no AppendBlob and no server-side copy
// (the failures of distribution#3935). Until the commit, staged blocks are
// invisible (a blob with only uncommitted blocks does not exist for reads or
// listings) and Azure discards them after a week; that is what cancel relies on.
//
// copy() is Copy Blob From URL (x-ms-requires-sync): one request that returns
// when the destination is complete, so a copy is never seen half done — unlike
// the asynchronous Copy Blob whose polling broke distribution's driver
// (distribution#3935). Azure takes it for sources up to 256 MiB, authorised by
// a short-lived read SAS signed with the account key (or the connection
// string's own SAS). Azurite implements it; it does not implement Put Block
// From URL, which would lift the size limit.
//
// Every Azure failure other than "not found" becomes a BlobStoreError, which
// the registry answers with 503; it never throws Azure's own errors upward.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { BlobSASPermissions, BlobServiceClient, newPipeline, StorageSharedKeyCredential, type BlockBlobClient, type ContainerClient, type RequestPolicyFactory, type StoragePipelineOptions } from '@azure/storage-blob';
import { BlobStoreError, type BlobInfo, type BlobStore, type BlobWriter, type ByteRange, type DeleteBatchOptions, type StoredFile } from './blob-store.ts';
import { BlobNaming } from './storage-paths.ts';

export interface AzureBlobStoreOptions {
  readonly connectionString: string;
  readonly container: string;
  /** distribution's `rootdirectory`: a prefix for every blob name. */
  readonly rootDirectory: string;
  /** distribution 2.x's blob names, with a leading `/` (see BlobNaming). */
  readonly legacyRootPrefix: boolean;
  /** Bytes per staged block (Azure allows 50,000 blocks per blob). */
  readonly blockSize: number;
  /** Blocks of one writer staged at the same time; memory per writer is about (this + 1) × blockSize. */
  readonly blockConcurrency: number;
  /** Extra SDK pipeline policies (metrics), run for every Azure request. */
  readonly policies?: readonly RequestPolicyFactory[];
}

export class AzureBlobStore implements BlobStore {
  readonly #container: ContainerClient;
  readonly #naming: BlobNaming;
  readonly #blockSize: number;
  readonly #blockConcurrency: number;

  constructor(options: AzureBlobStoreOptions) {
    const pipelineOptions: StoragePipelineOptions = {
      // Few, quick retries: a storage outage must turn into a 503 the client can
      // retry within seconds, not a request hanging for minutes inside the SDK.
      retryOptions: { maxTries: 3, retryDelayInMs: 200, maxRetryDelayInMs: 2000, tryTimeoutInMs: 10 * 60_000 },
    };
    let service = BlobServiceClient.fromConnectionString(options.connectionString, pipelineOptions);
    if (options.policies?.length) {
      // The connection string gives the URL and credential; a pipeline of our own takes the extra policies.
      const pipeline = newPipeline(service.credential, pipelineOptions);
      pipeline.factories.push(...options.policies);
      service = new BlobServiceClient(service.url, pipeline);
    }
    this.#container = service.getContainerClient(options.container);
    this.#naming = new BlobNaming(options.rootDirectory, options.legacyRootPrefix);
    this.#blockSize = options.blockSize;
    this.#blockConcurrency = options.blockConcurrency;
  }

  /** Creates the container when it is missing (distribution's driver does the same at start-up). */
  async ensureContainer(): Promise<void> {
    await wrap('create container', () => this.#container.createIfNotExists());
  }

  #blob(path: string): BlockBlobClient {
    return this.#container.getBlockBlobClient(this.#naming.blobName(path));
  }

  async stat(path: string, signal?: AbortSignal): Promise<BlobInfo | null> {
    return wrapNotFound(`stat ${path}`, async () => {
      const props = await this.#blob(path).getProperties({ abortSignal: signal });
      return { size: props.contentLength ?? 0, modified: props.lastModified ?? new Date(0) };
    });
  }

  async getContent(path: string, signal?: AbortSignal): Promise<Buffer | null> {
    return wrapNotFound(`read ${path}`, async () => {
      const response = await this.#blob(path).download(0, undefined, { abortSignal: signal, maxRetryRequests: 3 });
      const chunks: Buffer[] = [];
      for await (const chunk of response.readableStreamBody as Readable) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
  }

  async putContent(path: string, content: Buffer): Promise<void> {
    await wrap(`write ${path}`, () => this.#blob(path).upload(content, content.length, {
      blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
    }));
  }

  async read(path: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable | null> {
    return wrapNotFound(`read ${path}`, async () => {
      const offset = range?.start ?? 0;
      const count = range ? range.end - range.start + 1 : undefined;
      // maxRetryRequests: the SDK resumes a broken download from where it stopped.
      const response = await this.#blob(path).download(offset, count, { abortSignal: signal, maxRetryRequests: 3 });
      return response.readableStreamBody as Readable;
    });
  }

  writer(path: string, signal?: AbortSignal): BlobWriter {
    return new BlockWriter(this.#blob(path), path, this.#blockSize, this.#blockConcurrency, signal);
  }

  readonly maxCopySize = SYNC_COPY_LIMIT;

  async copy(source: string, destination: string, signal?: AbortSignal): Promise<boolean> {
    const from = this.#blob(source);
    const url = from.credential instanceof StorageSharedKeyCredential
      ? await from.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + COPY_SAS_LIFETIME_MS) })
      : from.url;
    try {
      await this.#blob(destination).syncCopyFromURL(url, { abortSignal: signal });
      return true;
    } catch (err) {
      // The source is missing (Azure names it CannotVerifyCopySource, with the source's 404).
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 404 || (err as { code?: string }).code === 'CannotVerifyCopySource') return false;
      throw storeError(`copy ${source} to ${destination}`, err);
    }
  }

  async list(dir: string): Promise<string[]> {
    const prefix = `${this.#naming.blobName(dir)}/`;
    return wrap(`list ${dir}`, async () => {
      const names: string[] = [];
      for await (const item of this.#container.listBlobsByHierarchy('/', { prefix })) {
        const child = item.name.slice(prefix.length).replace(/\/$/, '');
        if (child !== '') names.push(child);
      }
      return names.sort();
    });
  }

  async *walk(dir: string): AsyncIterable<StoredFile> {
    const prefix = `${this.#naming.blobName(dir)}/`;
    const pages = this.#container.listBlobsFlat({ prefix }).byPage({ maxPageSize: 5000 });
    for (;;) {
      const page = await wrap(`list ${dir}`, () => pages.next());
      if (page.done) return;
      for (const item of page.value.segment.blobItems) {
        yield { path: this.#naming.storagePath(item.name), size: item.properties.contentLength ?? 0, modified: item.properties.lastModified };
      }
    }
  }

  async touch(path: string): Promise<boolean> {
    // Set Blob Metadata is a write: it renews Last-Modified (and fails on a
    // missing blob) without touching the content. The registry sets no metadata.
    return (await wrapNotFound(`touch ${path}`, async () => {
      await this.#blob(path).setMetadata({});
      return true;
    })) ?? false;
  }

  async delete(path: string): Promise<boolean> {
    return wrap(`delete ${path}`, async () => (await this.#blob(path).deleteIfExists()).succeeded);
  }

  async deleteBatch(paths: readonly string[], options: DeleteBatchOptions = {}): Promise<string[]> {
    const removed: string[] = [];
    const conditions = options.unmodifiedSince ? { ifUnmodifiedSince: options.unmodifiedSince } : undefined;
    for (let i = 0; i < paths.length; i += AZURE_BATCH_LIMIT) {
      const slice = paths.slice(i, i + AZURE_BATCH_LIMIT);
      const response = await wrap(`delete ${slice.length} blobs`, () => this.#container.getBlobBatchClient().deleteBlobs(slice.map((p) => this.#blob(p)), { conditions }));
      for (const [index, sub] of response.subResponses.entries()) {
        // 412: modified since the cut-off (a push touched it); 404: already gone.
        if (sub.status === 202) removed.push(slice[index]);
        else if (sub.status !== 404 && sub.status !== 412) throw new BlobStoreError(`azure: delete ${slice[index] ?? 'blob'}: ${sub.status} ${sub.errorCode ?? ''}`.trim());
      }
    }
    return removed;
  }
}

/** Sub-requests Azure accepts in one blob batch. */
const AZURE_BATCH_LIMIT = 256;
/** Bytes queued for a streamed block before its writer waits for Azure to take them. */
const STREAMED_BLOCK_BUFFER = 1024 * 1024;
/** The largest source Copy Blob From URL takes. */
const SYNC_COPY_LIMIT = 256 * 1024 * 1024;
/** How long the read SAS of a copy's source is valid (the copy is one request). */
const COPY_SAS_LIFETIME_MS = 60 * 60_000;

/** Stages blocks at the final path as bytes arrive, `concurrency` at a time; commits the block list at the end. */
class BlockWriter implements BlobWriter {
  readonly #blob: BlockBlobClient;
  readonly #path: string;
  readonly #blockSize: number;
  readonly #concurrency: number;
  readonly #signal: AbortSignal | undefined;
  /** Unique per writer, so two uploads of the same content to the same path never mix blocks; fixed length, as Azure requires. */
  readonly #idPrefix = randomUUID();
  readonly #ids: string[] = [];
  readonly #inflight = new Set<Promise<void>>();
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #failure: unknown = null;
  #state: 'open' | 'committed' | 'cancelled' = 'open';
  size = 0;

  constructor(blob: BlockBlobClient, path: string, blockSize: number, concurrency: number, signal: AbortSignal | undefined) {
    this.#blob = blob;
    this.#path = path;
    this.#blockSize = blockSize;
    this.#concurrency = concurrency;
    this.#signal = signal;
  }

  async write(chunk: Buffer): Promise<void> {
    this.#checkOpen();
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    this.size += chunk.length;
    while (this.#pendingBytes >= this.#blockSize) await this.#stage(this.#takeBlock());
  }

  /**
   * Cuts `source` into blocks of blockSize and streams each into its Put Block
   * as the bytes arrive, `concurrency` blocks in flight: nothing is buffered
   * beyond the streams' own buffers, and Azure's work on a block it has
   * received (it checksums every block) overlaps the next block's transfer.
   */
  async writePart(size: number, source: Readable): Promise<void> {
    await this.flush();
    let block: PassThrough | null = null;
    let room = 0;
    let remaining = size;
    try {
      for await (const data of source) {
        let chunk = data as Buffer;
        while (chunk.length > 0) {
          if (!block) {
            while (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight);
            this.#throwFailure();
            room = Math.min(this.#blockSize, remaining);
            remaining -= room;
            if (room === 0) throw new BlobStoreError(`more than the ${size} bytes announced for ${this.#path}`);
            block = new PassThrough({ highWaterMark: STREAMED_BLOCK_BUFFER });
            block.on('error', () => {}); // the stage's failure is the one reported
            this.#stageStream(block, room);
          }
          const piece = chunk.length <= room ? chunk : chunk.subarray(0, room);
          chunk = chunk.subarray(piece.length);
          room -= piece.length;
          if (!block.write(piece)) await Promise.race([once(block, 'drain').catch(() => {}), ...this.#inflight]);
          this.#throwFailure();
          if (room === 0) {
            block.end();
            block = null;
          }
        }
      }
      if (block || remaining > 0) throw new BlobStoreError(`${size - remaining - room} of the ${size} bytes announced for ${this.#path} arrived`);
    } catch (err) {
      block?.destroy();
      this.#failure ??= err;
      await Promise.allSettled(this.#inflight);
      throw storeError(`stage block of ${this.#path}`, err);
    }
    await Promise.all(this.#inflight);
    this.#throwFailure();
  }

  /** Stages `size` bytes that `stream` delivers as one block, in flight until Azure answers. */
  #stageStream(stream: Readable, size: number): void {
    const id = this.#nextBlockId();
    this.size += size;
    // The SDK retries by calling the body factory again; a second try fails
    // at once instead of sending a stream already read (which would leave
    // Azure waiting for bytes that never come).
    let sent = false;
    const body = () => {
      if (sent) throw new BlobStoreError('its first try failed, and a streamed block cannot be sent twice');
      sent = true;
      return stream;
    };
    const staged: Promise<void> = this.#blob.stageBlock(id, body, size, { abortSignal: this.#signal })
      .then(() => {}, (err: unknown) => { this.#failure ??= err; })
      .finally(() => this.#inflight.delete(staged));
    this.#inflight.add(staged);
  }

  async flush(): Promise<void> {
    this.#checkOpen();
    if (this.#pendingBytes > 0) await this.#stage(this.#takeBlock());
  }

  async commit(): Promise<void> {
    this.#checkOpen();
    if (this.#pendingBytes > 0) await this.#stage(this.#takeBlock());
    await Promise.all(this.#inflight);
    this.#throwFailure();
    this.#state = 'committed';
    try {
      await this.#blob.commitBlockList(this.#ids, {
        blobHTTPHeaders: { blobContentType: 'application/octet-stream' },
        abortSignal: this.#signal,
      });
    } catch (err) {
      // Content-addressed paths: a concurrent upload of the same content may have
      // committed first, which discards our uncommitted blocks. Its bytes are ours.
      const existing = await this.#blob.getProperties().catch(() => null);
      if (existing?.contentLength === this.size) return;
      throw storeError(`commit ${this.#path}`, err);
    }
  }

  async cancel(): Promise<void> {
    if (this.#state !== 'open') return;
    this.#state = 'cancelled';
    this.#pending = [];
    // Staged blocks cannot be deleted without deleting the blob (which may be a
    // committed one); they are invisible and Azure drops them after a week.
    await Promise.allSettled(this.#inflight);
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw new BlobStoreError(`writer for ${this.#path} is ${this.#state}`);
    this.#throwFailure();
  }

  #nextBlockId(): string {
    const id = Buffer.from(`${this.#idPrefix}-${String(this.#ids.length).padStart(6, '0')}`).toString('base64');
    this.#ids.push(id);
    return id;
  }

  #throwFailure(): void {
    if (this.#failure !== null) throw storeError(`stage block of ${this.#path}`, this.#failure);
  }

  /**
   * The next block: the pending chunks up to blockSize bytes, as they are —
   * never concatenated (a copy of every byte, and garbage the size of a block).
   */
  #takeBlock(): Block {
    const chunks: Buffer[] = [];
    let size = 0;
    while (size < this.#blockSize && this.#pending.length > 0) {
      const chunk = this.#pending[0];
      const room = this.#blockSize - size;
      if (chunk.length <= room) {
        chunks.push(chunk);
        this.#pending.shift();
        size += chunk.length;
      } else {
        chunks.push(chunk.subarray(0, room));
        this.#pending[0] = chunk.subarray(room);
        size += room;
      }
    }
    this.#pendingBytes -= size;
    return { chunks, size };
  }

  async #stage(block: Block): Promise<void> {
    while (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight);
    this.#throwFailure();
    const id = this.#nextBlockId();
    // A body factory: each try (the SDK retries) streams the chunks afresh.
    const body = block.chunks.length === 1 ? block.chunks[0] : () => Readable.from(block.chunks, { objectMode: false });
    const staged: Promise<void> = this.#blob.stageBlock(id, body, block.size, { abortSignal: this.#signal })
      .then(() => {}, (err: unknown) => { this.#failure ??= err; })
      .finally(() => this.#inflight.delete(staged));
    this.#inflight.add(staged);
  }
}

/** Bytes of one block, in the chunks they arrived in. */
interface Block {
  readonly chunks: readonly Buffer[];
  readonly size: number;
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

function storeError(what: string, err: unknown): BlobStoreError {
  if (err instanceof BlobStoreError) return err;
  const status = (err as { statusCode?: number }).statusCode;
  const code = (err as { code?: string }).code;
  const reason = [status, code, (err as Error).message?.split('\n')[0]].filter(Boolean).join(' ');
  return new BlobStoreError(`azure: ${what}: ${reason}`, { cause: err });
}

async function wrap<T>(what: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (err) {
    throw storeError(what, err);
  }
}

async function wrapNotFound<T>(what: string, action: () => Promise<T>): Promise<T | null> {
  try {
    return await action();
  } catch (err) {
    if (isNotFound(err)) return null;
    throw storeError(what, err);
  }
}
