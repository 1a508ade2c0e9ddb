// The BlobStore on Azure Blob Storage (@azure/storage-blob). Objects are
// BlockBlobs; a writer stages blocks directly at its final path and commits
// the block list there, so there is no AppendBlob and no server-side copy
// (the failures of distribution#3935). Until the commit, staged blocks are
// invisible (a blob with only uncommitted blocks does not exist for reads or
// listings) and Azure discards them after a week; that is what cancel relies on.
//
// Every Azure failure other than "not found" becomes a BlobStoreError, which
// the registry answers with 503; it never throws Azure's own errors upward.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BlobServiceClient, newPipeline, type BlockBlobClient, type ContainerClient, type RequestPolicyFactory, type StoragePipelineOptions } from '@azure/storage-blob';
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

  #throwFailure(): void {
    if (this.#failure !== null) throw storeError(`stage block of ${this.#path}`, this.#failure);
  }

  #takeBlock(): Buffer {
    const all = this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes);
    const block = all.length > this.#blockSize ? all.subarray(0, this.#blockSize) : all;
    // Copied, so the staged block's memory is not kept alive by the few bytes that follow it.
    const rest = Buffer.from(all.subarray(block.length));
    this.#pending = rest.length > 0 ? [rest] : [];
    this.#pendingBytes = rest.length;
    return block;
  }

  async #stage(block: Buffer): Promise<void> {
    while (this.#inflight.size >= this.#concurrency) await Promise.race(this.#inflight);
    this.#throwFailure();
    const id = Buffer.from(`${this.#idPrefix}-${String(this.#ids.length).padStart(6, '0')}`).toString('base64');
    this.#ids.push(id);
    const staged: Promise<void> = this.#blob.stageBlock(id, block, block.length, { abortSignal: this.#signal })
      .then(() => {}, (err: unknown) => { this.#failure ??= err; })
      .finally(() => this.#inflight.delete(staged));
    this.#inflight.add(staged);
  }
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
