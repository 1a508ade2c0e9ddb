// The sidekick that announces one app instance to the routers: while the app
// passes its health check, `<prefix>/services/<service>/<instance>` holds its
// address, attached to an etcd lease kept alive from here. It withdraws the key
// when the app fails a check or on shutdown, and registers again whenever the
// key or lease is gone (etcd restarted or wiped, a network cut, a keepalive
// stream that hung — etcd3 alone notices a lost lease only after 2×TTL).
import type { Etcd3, Lease } from 'etcd3';
import type { Logger } from '../common/logger.ts';
import type { AnnounceConfig } from './announce-config.ts';
import type { HealthCheck } from './health-check.ts';

const OP_TIMEOUT = 2000;

export class Announcer {
  readonly key: string;
  readonly value: string;
  readonly #client: Etcd3;
  readonly #config: AnnounceConfig;
  readonly #log: Logger;
  readonly #check: HealthCheck;
  #lease: Lease | null = null;
  #leaseId: string | null = null;
  #lastKeepAlive = 0;
  #healthy: boolean | null = null;
  #timer: NodeJS.Timeout | undefined;
  #tick: Promise<void> | null = null;
  #closed = false;

  constructor(client: Etcd3, config: AnnounceConfig, check: HealthCheck, log: Logger) {
    this.#client = client;
    this.#config = config;
    this.#check = check;
    this.#log = log;
    this.key = `${config.etcdPrefix}/services/${config.service}/${config.instance}`;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    this.value = config.weight === null
      ? `${host}:${config.port}`
      : JSON.stringify({ host: config.host, port: config.port, weight: config.weight });
  }

  get announced(): boolean {
    return this.#lease !== null;
  }

  start(): void {
    this.#run();
    this.#timer = setInterval(() => this.#run(), this.#config.healthInterval);
  }

  /** Withdraws the key (revokes the lease) and stops. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#tick;
    await this.#withdraw('shutting down');
  }

  #run(): void {
    if (this.#tick !== null || this.#closed) return;
    this.#tick = this.#step().catch((err) => {
      this.#log.warn({ key: this.key, err: describe(err) }, 'announce step failed; retrying next interval');
    }).finally(() => {
      this.#tick = null;
    });
  }

  async #step(): Promise<void> {
    const healthy = await this.#check();
    if (this.#closed) return;
    if (healthy !== this.#healthy) {
      this.#log.info({ key: this.key, health: this.#config.health.href, healthy }, healthy ? 'app is healthy' : 'app failed its health check');
      this.#healthy = healthy;
    }
    if (!healthy) {
      await this.#withdraw('app failed its health check');
    } else if (this.#lease === null) {
      await this.#register('app is healthy');
    } else {
      await this.#verify();
    }
  }

  async #register(reason: string): Promise<void> {
    const lease = this.#client.lease(this.#config.ttl, { autoKeepAlive: true });
    lease.on('lost', (err) => {
      if (this.#lease !== lease) return;
      this.#log.warn({ key: this.key, err: describe(err) }, 'lease lost; registering again');
      this.#lease = null;
      this.#run();
    });
    lease.on('keepaliveSucceeded', () => {
      if (this.#lease === lease) this.#lastKeepAlive = Date.now();
    });
    try {
      const id = await lease.grant();
      await lease.put(this.key).value(this.value).options({ deadline: deadline() });
      this.#lease = lease;
      this.#leaseId = id;
      this.#lastKeepAlive = Date.now();
      this.#log.info({ key: this.key, value: this.value, lease: id, ttl: this.#config.ttl, reason }, 'announced');
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  async #withdraw(reason: string): Promise<void> {
    const lease = this.#lease;
    if (lease === null) return;
    this.#lease = null;
    this.#leaseId = null;
    try {
      await lease.revoke({ deadline: deadline() });
      this.#log.info({ key: this.key, reason }, 'withdrawn');
    } catch (err) {
      lease.release();
      this.#log.warn({ key: this.key, reason, err: describe(err) }, 'could not revoke the lease; the key expires with it');
    }
  }

  /** The key must still be ours: present, with our value, on our lease, and the lease recently kept alive. */
  async #verify(): Promise<void> {
    const staleFor = Date.now() - this.#lastKeepAlive;
    if (staleFor > this.#config.ttl * 1000) {
      await this.#replace(`no keepalive for ${staleFor} ms`);
      return;
    }
    const res = await this.#client.get(this.key).options({ deadline: deadline() }).exec();
    const kv = res.kvs[0];
    if (kv === undefined) await this.#replace('the key is gone from etcd');
    else if (kv.lease !== this.#leaseId || kv.value.toString() !== this.value) await this.#replace('the key was changed by someone else');
  }

  async #replace(reason: string): Promise<void> {
    this.#log.warn({ key: this.key, reason }, 'registration lost; registering again');
    const old = this.#lease;
    this.#lease = null;
    this.#leaseId = null;
    old?.release();
    await this.#register(reason);
    // The old lease may still live on the server; it holds nothing now, so let it expire.
  }
}

function deadline(): Date {
  return new Date(Date.now() + OP_TIMEOUT);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
