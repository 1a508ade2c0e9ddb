// The cluster's ACME certificates as the router's primary sees them: which
// exact hosts routes mark `"acme": true`, the certificate each has under
// /tls/acme-<host>, and each name's state in /acme/state/. Every second it
// starts an order for each name that has no certificate or is due for renewal
// and whose backoff has passed, if it wins the name's lock in etcd; a router
// that loses waits for the holder's result (or its lease to expire). The old
// certificate keeps serving until the new one replaces it under the same key.
//
// It never contacts the directory unless some route says "acme": true. Workers
// never order: only the primary has one of these.
import { X509Certificate } from 'node:crypto';
import { hostname } from 'node:os';
import type { Etcd3 } from 'etcd3';
import type { Logger } from '../../common/logger.ts';
import { ACME_RETRY_MAX, type RouterConfig } from '../config.ts';
import type { TableChange } from '../etcd/route-keys.ts';
import { parseCertificateValue } from '../tls/tls-certificate.ts';
import { AcmeAccount } from './account.ts';
import { acmeCertificateHost, isExactHost, type AcmeKeys } from './acme-keys.ts';
import { ACME_STATUSES, acmeStateJSON, parseAcmeState, type AcmeState } from './acme-state.ts';
import { orderCertificate, publishCertificate, writeState, type OrderContext } from './certificate-orderer.ts';
import { configureDirectoryTransport, rateLimitSince } from './directory-transport.ts';
import { OrderLock } from './order-lock.ts';
import { jittered, renewalTime, retryDelay } from './renewal-schedule.ts';

/** Orders one router runs at once (different names). */
const MAX_CONCURRENT_ORDERS = 2;
const TICK = 1000;
/** After an etcd error around the lock: look again in about this long. */
const ETCD_RETRY = 5000;

type AcmeOptions = Pick<RouterConfig, 'acmeDirectory' | 'acmeEmail' | 'acmeCaFile' | 'acmeLockTtl' | 'acmeRenewBefore' | 'acmeRetry' | 'acmeChallenge'>;

interface Validity {
  readonly notBefore: number;
  readonly notAfter: number;
}

export class AcmeCertificates {
  readonly #etcd: Etcd3;
  readonly #keys: AcmeKeys;
  readonly #options: AcmeOptions;
  readonly #log: Logger;
  readonly #routerId = `${hostname()}:${process.pid}`;
  readonly #context: OrderContext;
  /** Route name → the exact hosts it wants certificates for. */
  readonly #routes = new Map<string, readonly string[]>();
  readonly #certificates = new Map<string, Validity>();
  readonly #states = new Map<string, AcmeState>();
  /** The challenges in etcd as this router's watch delivered them: etcd key → value (HTTP-01 key authorization, TLS-ALPN-01 certificate). */
  readonly #challenges = new Map<string, string>();
  readonly #challengeWaiters = new Map<string, { readonly value: string; readonly resolve: () => void }>();
  /** host → epoch ms before which this router does not try (a lock held elsewhere, a failure it just wrote). */
  readonly #notBefore = new Map<string, number>();
  readonly #running = new Set<string>();
  readonly #locks = new Set<OrderLock>();
  #timer: NodeJS.Timeout | null = null;
  #enabled = false;
  #closed = false;

  constructor(etcd: Etcd3, keys: AcmeKeys, options: AcmeOptions, log: Logger) {
    this.#etcd = etcd;
    this.#keys = keys;
    this.#options = options;
    this.#log = log;
    this.#context = {
      etcd,
      keys,
      account: new AcmeAccount(etcd, keys.account),
      directory: options.acmeDirectory,
      email: options.acmeEmail,
      challengeType: options.acmeChallenge,
      challengeSeen: (key, value, timeout) => this.#challengeSeen(key, value, timeout),
    };
  }

  /** Starts the schedule; call once the first etcd snapshot is applied. */
  start(): void {
    if (this.#closed || this.#timer !== null) return;
    this.#timer = setInterval(() => this.#tick(), TICK);
    this.#timer.unref();
    this.#tick();
  }

  /** Stops ordering and releases every lock this router holds, so another router takes over at once. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await Promise.all([...this.#locks].map((lock) => lock.release()));
  }

  observe(changes: readonly TableChange[]): void {
    for (const change of changes) {
      if (change.kind === 'route') {
        this.#observeRoute(change.key, change.name, change.rule === null || !change.rule.acme ? null : change.rule.hosts);
      } else if (change.kind === 'certificate') {
        const host = acmeCertificateHost(change.name);
        if (host === null) continue;
        if (change.certificate === null) this.#certificates.delete(host);
        else this.#certificates.set(host, validity(change.certificate.cert));
      } else if (change.kind === 'acme-state') {
        if (change.state === null) this.#states.delete(change.host);
        else this.#states.set(change.host, change.state);
      } else if (change.kind === 'challenge') {
        this.#observeChallenge(change.key, change.keyAuthorization);
      } else if (change.kind === 'alpn-challenge') {
        this.#observeChallenge(change.key, change.certificate?.cert ?? null);
      }
    }
  }

  /** Per name: its state (from etcd, so the same on every router), for /routes. */
  toJSON(): object {
    const names: Record<string, object> = {};
    for (const host of [...this.#hosts()].sort()) {
      const state = this.#states.get(host);
      names[host] = state === undefined ? { status: 'pending' } : acmeStateJSON(state);
    }
    return { directory: this.#enabled ? this.#options.acmeDirectory : null, names };
  }

  /** The ACME families of /metrics, in the text format (appended to the router's). */
  metricsText(): string {
    const hosts = [...this.#hosts()].sort();
    const lines = [
      '# HELP tug_acme_certificate_state The state of each ACME name (1 for its current state): pending (no certificate yet), valid, renewing, failing.',
      '# TYPE tug_acme_certificate_state gauge',
    ];
    for (const host of hosts) {
      const status = this.#states.get(host)?.status ?? 'pending';
      for (const s of ACME_STATUSES) lines.push(`tug_acme_certificate_state{host="${host}",state="${s}"} ${s === status ? 1 : 0}`);
    }
    lines.push('# HELP tug_acme_order_failures Consecutive failed orders of each ACME name (0 after a success).', '# TYPE tug_acme_order_failures gauge');
    for (const host of hosts) lines.push(`tug_acme_order_failures{host="${host}"} ${this.#states.get(host)?.failures ?? 0}`);
    return `${lines.join('\n')}\n`;
  }

  #hosts(): Set<string> {
    const hosts = new Set<string>();
    for (const list of this.#routes.values()) for (const host of list) hosts.add(host);
    return hosts;
  }

  #observeRoute(key: string, name: string, hosts: readonly string[] | null): void {
    if (hosts === null) {
      this.#routes.delete(name);
      return;
    }
    if (hosts.length === 0) this.#log.warn({ key }, '"acme": true on a route without hosts: there is no name to order a certificate for');
    const exact: string[] = [];
    for (const host of hosts) {
      if (isExactHost(host)) exact.push(host);
      else this.#log.warn({ key, host }, '"acme": true skips this host: a wildcard needs the DNS-01 challenge, which Tug does not do');
    }
    this.#routes.set(name, exact);
    if (!this.#enabled && exact.length > 0) {
      this.#enabled = true;
      configureDirectoryTransport(this.#options.acmeCaFile);
      this.#log.info({ directory: this.#options.acmeDirectory, key }, 'ACME on: a route asks for certificates');
    }
  }

  #tick(): void {
    if (this.#closed || !this.#enabled) return;
    const now = Date.now();
    for (const host of this.#hosts()) {
      if (this.#running.size >= MAX_CONCURRENT_ORDERS) return;
      if (this.#running.has(host) || (this.#notBefore.get(host) ?? 0) > now) continue;
      const state = this.#states.get(host);
      if (state?.status === 'failing' && state.retryAt !== null && state.retryAt > now) continue;
      const certificate = this.#certificates.get(host);
      if (certificate !== undefined && this.#renewAt(certificate) > now) continue;
      void this.#run(host);
    }
  }

  #renewAt(certificate: Validity): number {
    return renewalTime(certificate.notBefore, certificate.notAfter, this.#options.acmeRenewBefore);
  }

  async #run(host: string): Promise<void> {
    this.#running.add(host);
    try {
      const lock = await OrderLock.acquire(this.#etcd, this.#keys.lock(host), this.#routerId, this.#options.acmeLockTtl);
      if (!(lock instanceof OrderLock)) {
        this.#notBefore.set(host, Date.now() + jittered(Math.min(this.#options.acmeLockTtl, 5000)));
        this.#log.debug({ host, heldBy: lock.heldBy }, 'another router is ordering this name');
        return;
      }
      this.#locks.add(lock);
      try {
        await this.#orderUnderLock(host, lock);
      } finally {
        this.#locks.delete(lock);
        await lock.release();
      }
    } catch (err) {
      this.#notBefore.set(host, Date.now() + jittered(ETCD_RETRY));
      this.#log.warn({ host, err: describe(err) }, 'ACME: etcd failed around the order lock; trying again');
    } finally {
      this.#running.delete(host);
    }
  }

  async #orderUnderLock(host: string, lock: OrderLock): Promise<void> {
    // Read again under the lock: the previous holder may have just published.
    const [certificateValue, stateValue] = await Promise.all([
      this.#etcd.get(this.#keys.certificate(host)).string(),
      this.#etcd.get(this.#keys.state(host)).string(),
    ]);
    const current = certificateValue === null ? null : parseCertificateValue(certificateValue);
    const served = current === null || typeof current === 'string' ? null : validity(current.cert);
    const parsedState = stateValue === null ? null : parseAcmeState(stateValue);
    const previous = parsedState === null || typeof parsedState === 'string' ? null : parsedState;
    const now = Date.now();
    if (served !== null && this.#renewAt(served) > now) return;
    if (previous?.status === 'failing' && previous.retryAt !== null && previous.retryAt > now) return;
    const renewing = served !== null;
    const base = { notAfter: served?.notAfter ?? null, renewAt: served === null ? null : this.#renewAt(served), failures: previous?.failures ?? 0, lastError: previous?.lastError ?? null, by: lock.holder };
    await writeState(this.#context, host, lock, { ...base, status: renewing ? 'renewing' : 'pending', retryAt: null, updatedAt: now });
    this.#log.info({ host, directory: this.#options.acmeDirectory, lock: lock.holder, notAfter: iso(base.notAfter) }, renewing ? 'ACME renewal started' : 'ACME order started');
    try {
      const spec = await orderCertificate(this.#context, host, lock);
      const issued = validity(spec.cert);
      const renewAt = this.#renewAt(issued);
      const published = await publishCertificate(this.#context, host, lock, spec, {
        status: 'valid', notAfter: issued.notAfter, renewAt, failures: 0, lastError: null, retryAt: null, by: lock.holder, updatedAt: Date.now(),
      });
      if (!published) throw new Error('lost the order lock before publishing; the certificate is dropped');
      this.#log.info({ host, notAfter: iso(issued.notAfter), renewAt: iso(renewAt), ms: Date.now() - now, lock: lock.holder }, renewing ? 'ACME certificate renewed' : 'ACME certificate issued');
    } catch (err) {
      const failures = base.failures + 1;
      const rateLimit = rateLimitSince(now);
      const retryAt = Math.max(Date.now() + retryDelay(failures, this.#options.acmeRetry, ACME_RETRY_MAX), rateLimit?.retryAt ?? 0);
      const lastError = describe(err).slice(0, 500);
      this.#notBefore.set(host, retryAt);
      if (rateLimit !== null) this.#log.warn({ host, detail: rateLimit.detail, retryAfter: iso(rateLimit.retryAt) }, 'ACME directory rate limit: waiting as long as it asks');
      this.#log.error({ host, err: lastError, failures, retryInMs: retryAt - Date.now(), retryAt: iso(retryAt), renewing, lock: lock.holder }, 'ACME order failed; the current certificate (if any) keeps serving');
      await writeState(this.#context, host, lock, { ...base, status: 'failing', failures, lastError, retryAt, updatedAt: Date.now() }).catch(() => {});
    }
  }

  #observeChallenge(key: string, value: string | null): void {
    if (value === null) {
      this.#challenges.delete(key);
      return;
    }
    this.#challenges.set(key, value);
    const waiter = this.#challengeWaiters.get(key);
    if (waiter?.value === value) waiter.resolve();
  }

  #challengeSeen(key: string, value: string, timeoutMs: number): Promise<void> {
    if (this.#challenges.get(key) === value) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#challengeWaiters.delete(key);
        reject(new Error(`the challenge put in etcd (${key}) did not come back through the watch within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#challengeWaiters.set(key, {
        value,
        resolve: () => {
          clearTimeout(timer);
          this.#challengeWaiters.delete(key);
          resolve();
        },
      });
    });
  }
}

function validity(chain: string): Validity {
  const leaf = new X509Certificate(chain);
  return { notBefore: leaf.validFromDate.getTime(), notAfter: leaf.validToDate.getTime() };
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
