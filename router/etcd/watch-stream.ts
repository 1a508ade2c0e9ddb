// One etcd Watch RPC carrying one watch per prefix, owned by one generation of
// EtcdSync. It is never repaired in place: when the stream fails, ends, or etcd
// cancels one of its watches (compaction), it reports itself broken once and
// the sync takes a fresh snapshot and opens a new stream.
//
// Why not etcd3's watch builder: its WatchManager re-attaches watches on its
// own, one at a time, and matches "created" answers to watchers by order. After
// a partition with a compaction, a cancel we sent crossing etcd's own cancel
// made it throw from inside the gRPC stream, which left the stream unread and
// every later watch waiting forever to attach. Here each watch carries its own
// id (WatchCreateRequest.watch_id, etcd ≥ 3.4), nothing is canceled one by one,
// and nothing in the data path throws.
import type { Etcd3, IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { Range } from 'etcd3';

export interface WatchStreamHandlers {
  /** Events (or a progress header) for the watch on prefixes[index]; may come while open() is still pending. */
  readonly onResponse: (index: number, res: IWatchResponse) => void;
  /** Called at most once, after open() resolved: the stream cannot deliver events any more. */
  readonly onBroken: (reason: string) => void;
}

export class WatchStream {
  readonly #stream: IDuplexStream<IWatchRequest, IWatchResponse>;
  #closed = false;
  #opened = false;
  readonly #handlers: WatchStreamHandlers;

  private constructor(stream: IDuplexStream<IWatchRequest, IWatchResponse>, handlers: WatchStreamHandlers) {
    this.#stream = stream;
    this.#handlers = handlers;
  }

  /**
   * Opens a stream watching every prefix from startRevision. Resolves once etcd
   * has created every watch; rejects (and closes the stream) if that takes
   * longer than timeoutMs or the stream breaks first.
   */
  static async open(client: Etcd3, prefixes: readonly string[], startRevision: number, handlers: WatchStreamHandlers, timeoutMs: number): Promise<WatchStream> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the watch on ${prefixes.join(', ')} was not created within ${timeoutMs} ms`)), timeoutMs);
    });
    const opening = client.watchClient.watch();
    let watch: WatchStream | undefined;
    try {
      const stream = await Promise.race([opening, deadline]).catch((err: unknown) => {
        // A stream that opens after the deadline belongs to nobody.
        opening.then((late) => { late.end(); late.cancel(); }, () => {});
        throw err;
      });
      watch = new WatchStream(stream, handlers);
      await Promise.race([watch.#create(prefixes, startRevision), deadline]);
      watch.#opened = true;
      return watch;
    } catch (err) {
      watch?.close();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Ends the stream; no handler is called after this. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // end() first: etcd3 counts an error on a still-writable stream against the host.
    this.#stream.end();
    this.#stream.cancel();
  }

  #create(prefixes: readonly string[], startRevision: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const pending = new Set(prefixes.map((_, index) => index));
      const broken = (reason: string) => {
        if (this.#closed) return;
        if (!this.#opened) {
          reject(new Error(reason));
          return;
        }
        this.close();
        this.#handlers.onBroken(reason);
      };
      this.#stream.on('data', (res) => {
        if (this.#closed) return;
        if (res.watch_id === '-1') return; // a progress notice for the whole stream
        const index = Number(res.watch_id) - 1;
        if (!(index >= 0 && index < prefixes.length)) return broken(`etcd answered for an unknown watch id ${res.watch_id}`);
        if (res.canceled) {
          const compacted = res.compact_revision && res.compact_revision !== '0';
          return broken(compacted ? `compacted at ${res.compact_revision}` : `watch on ${prefixes[index]} canceled by etcd${res.cancel_reason ? `: ${res.cancel_reason}` : ''}`);
        }
        if (res.created) {
          pending.delete(index);
          if (pending.size === 0) resolve();
          return;
        }
        // Events may arrive before the other watches are created: the snapshot they follow is applied already.
        this.#handlers.onResponse(index, res);
      });
      this.#stream.on('error', (err) => broken(err.message));
      this.#stream.on('end', () => broken('the watch stream ended'));
      prefixes.forEach((prefix, index) => {
        const range = Range.prefix(prefix);
        this.#stream.write({ create_request: { key: range.start, range_end: range.end, start_revision: String(startRevision), watch_id: String(index + 1) } });
      });
    });
  }
}
