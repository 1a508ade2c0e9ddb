// The narrow storage interface the registry is written against (after
// distribution's StorageDriver and FileWriter). Paths are storage-paths.ts
// paths; an implementation maps them to its own names. Nothing above this
// interface knows about Azure, and nothing below it knows about manifests.
//
// The one promise that matters: bytes given to a BlobWriter become visible at
// its path only on commit(), all at once; cancel() — or a crash — leaves the
// path as it was. That is what lets the registry verify a digest while
// streaming and refuse a wrong one with nothing stored.
import type { Readable } from 'node:stream';

export interface BlobInfo {
  readonly size: number;
  readonly modified: Date;
}

/** An inclusive byte range, as HTTP `Range` expresses it. */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

export interface StoredFile {
  readonly path: string;
  readonly size: number;
  readonly modified: Date;
}

export interface BlobWriter {
  /** Bytes accepted so far. */
  readonly size: number;
  /** Appends bytes; resolves when the caller may write more (backpressure). The chunk may be kept until then. */
  write(chunk: Buffer): Promise<void>;
  /**
   * Appends exactly `size` bytes read from `source`, sent on to storage as
   * they arrive (nothing buffered here: the streams' own backpressure bounds
   * memory). Resolves when they are stored; rejects, and fails the writer,
   * when `source` ends short or runs long, or storage refuses. Never retried:
   * `source` cannot be read twice.
   */
  writePart(size: number, source: Readable): Promise<void>;
  /** Sends on what is buffered, so nothing written waits in memory for more (a writer kept open between requests). */
  flush(): Promise<void>;
  /** Makes everything written visible at the path, atomically. */
  commit(): Promise<void>;
  /** Abandons what was written; the path is left as it was. */
  cancel(): Promise<void>;
}

export interface BlobStore {
  /** Size and modification time, or null when there is nothing at `path`. */
  stat(path: string, signal?: AbortSignal): Promise<BlobInfo | null>;
  /** A small object's whole content (links, manifests), or null. */
  getContent(path: string, signal?: AbortSignal): Promise<Buffer | null>;
  /** Replaces a small object's content in one request. */
  putContent(path: string, content: Buffer): Promise<void>;
  /** Streams an object, or a byte range of it; null when there is nothing at `path`. */
  read(path: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable | null>;
  /**
   * A URL a client can GET the object from directly, without the registry
   * (distribution's `URLFor`), granting read of that one object until
   * `expiresOn`; null when this store cannot make one, or when the object is
   * better served from here (a node's cache holds it). It does not ask
   * whether the object exists: the caller has done so.
   */
  readUrl?(path: string, expiresOn: Date): Promise<string | null>;
  /** A writer whose bytes appear at `path` only on commit(). */
  writer(path: string, signal?: AbortSignal): BlobWriter;
  /** The largest object copy() takes. */
  readonly maxCopySize: number;
  /**
   * Copies the object at `source` to `destination` inside storage, without
   * its bytes passing through the registry; the destination appears whole or
   * not at all. False when there is nothing at `source` or storage cannot
   * copy it (then the caller writes the bytes itself).
   */
  copy(source: string, destination: string, signal?: AbortSignal): Promise<boolean>;
  /** Names of the direct children (objects and directories) of `dir`, sorted; [] when none. */
  list(dir: string): Promise<string[]>;
  /** Every object below `dir`, in name order. */
  walk(dir: string): AsyncIterable<StoredFile>;
  /**
   * Renews the object's modification time in storage itself (never in a
   * cache); false when nothing is there. A write that reuses what is stored
   * (an existing blob, a mount, a manifest's references) touches it first:
   * garbage collection deletes only what was not modified since its cut-off,
   * so what a push touched cannot be deleted under it.
   */
  touch(path: string): Promise<boolean>;
  /** Removes the object at `path`; true when something was there. */
  delete(path: string): Promise<boolean>;
  /**
   * Removes many objects in as few requests as the storage allows (garbage
   * collection deletes thousands); paths already gone are fine. With
   * `unmodifiedSince`, an object modified after that instant is left in place,
   * checked by the storage at the moment of the delete. Returns the paths
   * removed.
   */
  deleteBatch(paths: readonly string[], options?: DeleteBatchOptions): Promise<string[]>;
}

export interface DeleteBatchOptions {
  readonly unmodifiedSince?: Date;
}

/**
 * The storage could not do what was asked (unreachable, timed out, refused).
 * Never a "not found": those are null / false results. The registry answers
 * 503 for it, and nothing already committed is touched.
 */
export class BlobStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlobStoreError';
  }
}
