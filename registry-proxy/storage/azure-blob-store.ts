// The BlobStore on Azure Blob Storage (@azure/storage-blob). Objects are
// BlockBlobs, written by a BlockWriter (azure-block-writer.ts): blocks staged,
// then one block list committed; no AppendBlob.
//
// copy() is Copy Blob From URL (x-ms-requires-sync): one request that returns
// when the destination is complete, so a copy is never seen half done — unlike
// the asynchronous Copy Blob whose polling broke distribution's driver
// (distribution#3935). Azure takes it for sources up to 256 MiB, authorised by
// a short-lived read SAS signed with the account key (or the connection
// string's own SAS). Azurite implements it; it does not implement Put Block
// From URL, which would lift the size limit.
//
// Every Azure failure other than "not found" becomes a BlobStoreError
// (azure-store-errors.ts), which the registry answers with 503.
import type { Readable } from 'node:stream';
import { BlobSASPermissions, BlobServiceClient, newPipeline, StorageSharedKeyCredential, type BlockBlobClient, type ContainerClient, type RequestPolicyFactory, type StoragePipelineOptions } from '@azure/storage-blob';
import { BlobStoreError, type BlobInfo, type BlobStore, type BlobWriter, type ByteRange, type DeleteBatchOptions, type StoredFile } from './blob-store.ts';
import { BlockWriter } from './azure-block-writer.ts';
import { storeError, wrap, wrapNotFound } from './azure-store-errors.ts';
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

  /**
   * A service SAS signed with the account key: read (`sp=r`) of this one blob
   * (`sr=b`) until `expiresOn`, computed here without a request. Only with an
   * account key: a connection string's own SAS may grant more than one blob's
   * read, and is never handed to a client (null: the registry relays instead).
   */
  async readUrl(path: string, expiresOn: Date): Promise<string | null> {
    const blob = this.#blob(path);
    if (!(blob.credential instanceof StorageSharedKeyCredential)) return null;
    return blob.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn });
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
/** The largest source Copy Blob From URL takes. */
const SYNC_COPY_LIMIT = 256 * 1024 * 1024;
/** How long the read SAS of a copy's source is valid (the copy is one request). */
const COPY_SAS_LIFETIME_MS = 60 * 60_000;
