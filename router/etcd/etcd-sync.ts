// Keeps the router's view of etcd (services, routes, TLS certificates, basicAuth user lists, ACME challenges and states) correct:
// a snapshot with its revision, then watches from the next revision; a fresh snapshot (applied as a diff) after a
// compaction, a wiped etcd (revision going backwards or a new cluster id), a
// stalled watch or an outage. It never removes a route because of an etcd
// error: only a state read from etcd removes anything.
//
// Emits typed TableChanges; invalid values are skipped with a warning naming
// the key, and the key's last good value stays in force.
import { Range, type Etcd3, type IKeyValue, type IWatchResponse } from 'etcd3';
import type { Logger } from '../../common/logger.ts';
import type { RouteKeys, TableChange } from './route-keys.ts';
import { WatchStream } from './watch-stream.ts';

export interface EtcdSyncOptions {
  /** How often etcd is probed for reachability, a wipe and watch progress, ms. */
  readonly probeInterval: number;
  /** Every how many probes the watch is checked for a stall (a linearizable count over the prefixes). */
  readonly stallCheckEvery: number;
  readonly onChanges: (changes: readonly TableChange[]) => void;
}

export interface SyncState {
  /** The first snapshot has been applied. */
  synced: boolean;
  /** etcd answered the last probe and the watch stream is open. */
  connected: boolean;
  /** Highest etcd revision applied. */
  revision: number;
  /** Epoch ms of the last successful contact with etcd (0 = never). */
  lastContact: number;
}

interface KeyState {
  readonly raw: string;
  readonly good: boolean;
}

const OP_TIMEOUT = 2000;

export class EtcdSync {
  readonly state: SyncState = { synced: false, connected: false, revision: 0, lastContact: 0 };
  readonly #client: Etcd3;
  readonly #keys: RouteKeys;
  readonly #log: Logger;
  readonly #options: EtcdSyncOptions;
  readonly #prefixes: readonly string[];
  /** Raw value of every key in the prefixes, and whether it parsed; used to diff a fresh snapshot. */
  readonly #values = new Map<string, KeyState>();
  #watch: WatchStream | null = null;
  /** Per prefix: the highest mod revision seen by its watch (events at or below it are replays). */
  #seen: number[] = [];
  #clusterId: string | null = null;
  #probeTimer: NodeJS.Timeout | undefined;
  #probes = 0;
  #stallSuspect: number[] = [];
  #resyncing: Promise<void> | null = null;
  #resyncAgain: string | null = null;
  /** Ends a failed resync's backoff early: set while it waits, called when a probe reaches etcd. */
  #wakeResync: (() => void) | null = null;
  #closed = false;

  constructor(client: Etcd3, keys: RouteKeys, log: Logger, options: EtcdSyncOptions) {
    this.#client = client;
    this.#keys = keys;
    this.#log = log;
    this.#options = options;
    this.#prefixes = keys.prefixes;
  }

  /** Starts syncing; resolves once the first snapshot is applied (retrying with backoff until then). */
  start(): Promise<void> {
    this.#probeTimer = setInterval(() => void this.#probe(), this.#options.probeInterval);
    this.#probeTimer.unref();
    return this.resync('start');
  }

  /** Takes a fresh snapshot, applies the difference and re-attaches the watches. Coalesces concurrent calls. */
  resync(reason: string): Promise<void> {
    if (this.#resyncing) {
      this.#resyncAgain = reason;
      return this.#resyncing;
    }
    this.#resyncing = this.#runResync(reason).finally(() => {
      this.#resyncing = null;
      const again = this.#resyncAgain;
      this.#resyncAgain = null;
      if (again !== null && !this.#closed) void this.resync(again);
    });
    return this.#resyncing;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#probeTimer);
    this.#closeWatch();
  }

  async #runResync(reason: string): Promise<void> {
    let backoff = 100;
    while (!this.#closed) {
      try {
        this.#closeWatch();
        const { revision, clusterId, kvs } = await this.#snapshot();
        this.#clusterId = clusterId;
        this.#applySnapshot(kvs);
        this.state.revision = revision;
        this.#seen = this.#prefixes.map(() => revision);
        this.#stallSuspect = this.#prefixes.map(() => 0);
        this.#watch = await WatchStream.open(this.#client, this.#prefixes, revision + 1, {
          onResponse: (index, res) => this.#onWatchData(index, res),
          onBroken: (why) => this.#onWatchBroken(why),
        }, OP_TIMEOUT);
        const first = !this.state.synced;
        this.state.synced = true;
        this.state.connected = true;
        this.state.lastContact = Date.now();
        this.#log.info({ reason, revision, keys: this.#values.size }, first ? 'etcd snapshot loaded' : 'etcd resynchronized');
        return;
      } catch (err) {
        this.state.connected = false;
        this.#log.warn({ reason, err: describe(err), retryInMs: backoff }, 'etcd sync failed; serving the last known table and retrying');
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          timer.unref();
          this.#wakeResync = () => { clearTimeout(timer); resolve(); };
        });
        this.#wakeResync = null;
        backoff = Math.min(backoff * 2, 2000);
      }
    }
  }

  async #snapshot(): Promise<{ revision: number; clusterId: string; kvs: IKeyValue[] }> {
    const result = await this.#client.kv.txn({
      success: this.#prefixes.map((prefix) => {
        const range = Range.prefix(prefix);
        return { request_range: { key: range.start, range_end: range.end } };
      }),
    }, { deadline: Date.now() + OP_TIMEOUT * 5 });
    const kvs = result.responses.flatMap((r) => r.response_range?.kvs ?? []);
    return { revision: Number(result.header.revision), clusterId: result.header.cluster_id, kvs };
  }

  /** The stream failed, ended, or etcd canceled a watch (compaction): it cannot be resumed, so take a fresh snapshot. */
  #onWatchBroken(why: string): void {
    this.#watch = null;
    if (this.#closed) return;
    if (this.state.connected) {
      this.state.connected = false;
      this.#log.warn({ err: why }, 'etcd watch disconnected; reconnecting with backoff');
    }
    void this.resync(why);
  }

  #onWatchData(index: number, res: IWatchResponse): void {
    const batch: { key: string; value: string | null }[] = [];
    // Events at or below what is applied are replays. Compare against the floor, not the last
    // event: one transaction (e.g. `etcdctl del --prefix`) gives many events the same revision.
    const floor = this.#seen[index];
    let seen = floor;
    for (const event of res.events) {
      const modRevision = Number(event.kv.mod_revision);
      if (modRevision <= floor) continue;
      if (modRevision > seen) seen = modRevision;
      batch.push({ key: event.kv.key.toString(), value: event.type === 'Delete' ? null : event.kv.value.toString() });
    }
    this.#seen[index] = seen;
    const revision = Math.max(seen, Number(res.header.revision));
    if (revision > this.state.revision) this.state.revision = revision;
    this.state.lastContact = Date.now();
    if (batch.length > 0) this.#applyBatch(batch);
  }

  #applySnapshot(kvs: readonly IKeyValue[]): void {
    const batch: { key: string; value: string | null }[] = [];
    const present = new Set<string>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      const value = kv.value.toString();
      present.add(key);
      if (this.#values.get(key)?.raw !== value) batch.push({ key, value });
    }
    for (const key of this.#values.keys()) {
      if (!present.has(key)) batch.push({ key, value: null });
    }
    this.#applyBatch(batch);
  }

  #applyBatch(batch: readonly { key: string; value: string | null }[]): void {
    const changes: TableChange[] = [];
    for (const { key, value } of batch) {
      const previous = this.#values.get(key);
      if (value === null) {
        this.#values.delete(key);
        if (previous?.good === false) continue;
      } else {
        if (previous?.raw === value) continue;
      }
      const parsed = this.#keys.parse(key, value);
      if (parsed.ok) {
        if (value !== null) this.#values.set(key, { raw: value, good: true });
        changes.push(parsed.change);
      } else {
        if (value !== null) this.#values.set(key, { raw: value, good: previous?.good ?? false });
        if (parsed.error) {
          this.#log.warn({ key, err: parsed.error.message }, previous?.good
            ? 'ignoring invalid etcd value; the key keeps its last good value'
            : 'ignoring invalid etcd value');
        }
      }
    }
    if (changes.length > 0) this.#options.onChanges(changes);
  }

  async #probe(): Promise<void> {
    // While a resync runs, probe only to end its backoff as soon as etcd answers again.
    if (this.#closed || (this.#resyncing && !this.#wakeResync)) return;
    try {
      const range = Range.prefix(this.#keys.servicesPrefix);
      const res = await this.#client.kv.range(
        { key: range.start, range_end: range.end, limit: 1, keys_only: true },
        { deadline: Date.now() + Math.min(OP_TIMEOUT, this.#options.probeInterval) },
      );
      this.state.lastContact = Date.now();
      const revision = Number(res.header.revision);
      if (this.#wakeResync) {
        this.#log.info({ revision }, 'etcd reachable again; resynchronizing');
        this.#wakeResync();
      } else if (!this.state.connected && this.#watch) {
        // Only the probe failed (a slow answer): the watch stream never broke, so nothing was missed.
        this.state.connected = true;
        this.#log.info({ revision }, 'etcd reachable again');
      } else if (!this.state.connected) {
        this.#log.info({ revision }, 'etcd reachable again; resynchronizing');
        void this.resync('etcd reachable again');
      } else if (revision < this.state.revision || (this.#clusterId !== null && res.header.cluster_id !== this.#clusterId)) {
        this.#log.warn({ revision, applied: this.state.revision }, 'etcd revision went backwards or cluster changed (data wiped?); resynchronizing');
        void this.resync('etcd revision went backwards');
      } else if (++this.#probes % this.#options.stallCheckEvery === 0) {
        await this.#checkStall();
      }
    } catch (err) {
      if (this.state.connected) {
        this.state.connected = false;
        this.#log.warn({ err: describe(err) }, 'etcd unreachable; serving the last known table');
      }
    }
  }

  /**
   * A watch can hang while unary calls work (etcd#8980). If a key in a prefix
   * was modified after what its watch has delivered, twice in a row, the watch
   * is stalled: resync. The newest key comes from a sort by mod revision: etcd
   * 3.4 ignores min_mod_revision when it counts (count_only answers the whole
   * prefix), which made every quiet cluster look stalled.
   */
  async #checkStall(): Promise<void> {
    for (let i = 0; i < this.#prefixes.length; i++) {
      const range = Range.prefix(this.#prefixes[i]);
      const seen = this.#seen[i];
      const res = await this.#client.kv.range(
        { key: range.start, range_end: range.end, keys_only: true, limit: 1, sort_target: 'Mod', sort_order: 'Descend' },
        { deadline: Date.now() + OP_TIMEOUT },
      );
      const newest = res.kvs.length === 0 ? 0 : Number(res.kvs[0].mod_revision);
      if (newest <= seen) {
        this.#stallSuspect[i] = 0;
      } else if (this.#stallSuspect[i] !== 0 && this.#seen[i] <= this.#stallSuspect[i]) {
        this.#log.warn({ prefix: this.#prefixes[i], seen }, 'etcd watch stalled (keys changed but no events arrived); resynchronizing');
        void this.resync('watch stalled');
        return;
      } else {
        this.#stallSuspect[i] = seen;
      }
    }
  }

  #closeWatch(): void {
    this.#watch?.close();
    this.#watch = null;
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
