// Bytes of known length handed to a BlobWriter's writePart while they arrive
// from a request: the request is read as fast as storage takes the bytes, and
// a storage failure never stalls or crashes the reader — it only ends the part
// (`failure`), and the caller decides what that means (the upload's spool
// still has the bytes; a monolithic upload fails with 503).
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import type { BlobWriter } from './blob-store.ts';

/** Bytes queued for storage before the reader waits (the writer's own stream buffers come on top). */
const PART_BUFFER = 1024 * 1024;

export class StreamedPart {
  readonly #stream = new PassThrough({ highWaterMark: PART_BUFFER });
  readonly #settled: Promise<void>;
  /** Why storage did not take the part; null while it has taken everything so far. */
  failure: unknown = null;

  constructor(writer: BlobWriter, size: number) {
    // Its failure is storage's answer (settled below), never a crash of the process.
    this.#stream.on('error', () => {});
    this.#settled = writer.writePart(size, this.#stream).catch((err: unknown) => {
      this.failure = err;
      this.#stream.destroy();
    });
  }

  get ok(): boolean {
    return this.failure === null;
  }

  /** Hands `chunk` on, waiting while storage is behind; nothing once the part failed. */
  async feed(chunk: Buffer): Promise<void> {
    if (!this.ok || this.#stream.write(chunk)) return;
    await Promise.race([once(this.#stream, 'drain').catch(() => {}), this.#settled]);
  }

  /** Ends the part — cut short when the request did not deliver every byte — and waits for storage's answer. */
  async end(complete: boolean): Promise<void> {
    if (complete) this.#stream.end();
    else this.#stream.destroy(new Error('the request ended early'));
    await this.#settled;
  }
}
