// Keeps this router's record (router-record.ts) in etcd at <prefix>/routers/<node>,
// on a lease of REGISTRATION_TTL seconds that etcd3 keeps alive: the record
// disappears when the router stops (the lease is revoked) or loses etcd for
// longer than the TTL. It is rewritten when what it says changes (the applied
// revision, health), at most once per REFRESH_INTERVAL, so a busy etcd does not
// get one write per change from every router. A failed write or a lost lease is
// retried on the next tick with a new lease; nothing here ever stops the router.
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../../common/logger.ts';
import type { RouterRecord } from './router-record.ts';

export const REGISTRATION_TTL = 15;
const REFRESH_INTERVAL = 1000;
const WRITE_TIMEOUT = 3000;

/** What changes in a record; the rest is fixed at start. */
export interface RegistrationState {
  readonly revision: number;
  readonly healthy: boolean;
}

export class RouterRegistration {
  readonly #client: Etcd3;
  readonly #key: string;
  readonly #fixed: Omit<RouterRecord, 'revision' | 'healthy' | 'updatedAt'>;
  readonly #state: () => RegistrationState;
  readonly #log: Logger;
  #lease: Lease | null = null;
  /** What the record in etcd says now (null: nothing written under the current lease). */
  #written: RegistrationState | null = null;
  #timer: NodeJS.Timeout | undefined;
  #writing = false;
  #closed = false;
  #failing = false;

  constructor(client: Etcd3, key: string, fixed: Omit<RouterRecord, 'revision' | 'healthy' | 'updatedAt'>, state: () => RegistrationState, log: Logger) {
    this.#client = client;
    this.#key = key;
    this.#fixed = fixed;
    this.#state = state;
    this.#log = log;
  }

  start(): void {
    this.#timer = setInterval(() => void this.#refresh(), REFRESH_INTERVAL);
    this.#timer.unref();
    void this.#refresh();
  }

  /** Revokes the lease, so the record goes at once (bounded: a stop never waits on etcd for long). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    const lease = this.#lease;
    this.#lease = null;
    if (lease !== null) await withTimeout(lease.revoke(), WRITE_TIMEOUT).catch(() => {});
  }

  async #refresh(): Promise<void> {
    if (this.#writing || this.#closed) return;
    const state = this.#state();
    const written = this.#written;
    if (written !== null && written.revision === state.revision && written.healthy === state.healthy) return;
    this.#writing = true;
    try {
      this.#lease ??= this.#grant();
      const record: RouterRecord = { ...this.#fixed, ...state, updatedAt: new Date().toISOString() };
      await withTimeout(this.#lease.put(this.#key).value(JSON.stringify(record)).exec(), WRITE_TIMEOUT);
      this.#written = state;
      if (this.#failing) this.#log.info({ key: this.#key }, 'router registered in etcd again');
      this.#failing = false;
    } catch (err) {
      if (!this.#failing) this.#log.warn({ key: this.#key, err: (err as Error).message }, 'could not write this router\'s record to etcd; retrying');
      this.#failing = true;
      this.#drop();
    } finally {
      this.#writing = false;
    }
  }

  #grant(): Lease {
    const lease = this.#client.lease(REGISTRATION_TTL, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.#lease !== lease || this.#closed) return;
      this.#log.warn({ key: this.#key, err: err.message }, 'router registration lease lost; registering again');
      this.#drop();
    });
    return lease;
  }

  #drop(): void {
    const lease = this.#lease;
    this.#lease = null;
    this.#written = null;
    if (lease !== null) void lease.revoke().catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`etcd did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
