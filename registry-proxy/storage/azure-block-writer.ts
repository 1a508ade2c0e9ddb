// A BlobWriter on Azure: stages blocks of a BlockBlob as bytes arrive,
// `concurrency` at a time, and commits the block list at the end. Staged
// blocks are invisible until the commit (a blob with only uncommitted blocks
// does not exist for reads or listings) and Azure discards them after a week;
// that is what cancel relies on. Bytes are never concatenated into blocks:
// a block is sent as the chunks it arrived in, or streamed as it arrives.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import { BlobStoreError, type BlobWriter } from './blob-store.ts';
import { storeError } from './azure-store-errors.ts';

/** Bytes queued for a streamed block before its writer waits for Azure to take them. */
const STREAMED_BLOCK_BUFFER = 1024 * 1024;

/** Stages blocks at its path as bytes arrive, `concurrency` at a time; commits the block list at the end. */
export class BlockWriter implements BlobWriter {
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
