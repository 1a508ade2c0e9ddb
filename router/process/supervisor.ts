// The router's primary process on a node: the single etcd watch, the admin
// listener, and the proxy workers it feeds with table changes over IPC (routes,
// backends, and the certificates from etcd and --cert/--key files, all checked
// here first). It restarts a worker that dies, drains all of them on SIGTERM,
// and sums their metrics on a scrape. It also owns the TLS session-ticket keys all
// workers share (see TICKET_KEY_LIFETIME).
import cluster, { type Worker } from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createEtcdClient } from '../../common/etcd-client.ts';
import { formatListenAddress, freePort } from '../../common/listen-address.ts';
import type { Logger } from '../../common/logger.ts';
import { AdminServer } from '../../common/admin-server.ts';
import { CounterRates } from '../../common/dashboard/counter-rates.ts';
import { TUG_VERSION } from '../../common/version.ts';
import { readClusterStatus } from '../../status/cluster-status.ts';
import { AcmeCertificates } from '../acme/acme-certificates.ts';
import type { RouterConfig } from '../config.ts';
import { buildDashboard, type DashboardData } from '../dashboard/dashboard-data.ts';
import { routerDashboard } from '../dashboard/dashboard-routes.ts';
import { EtcdSync } from '../etcd/etcd-sync.ts';
import { MetricsAggregator } from '../metrics/metrics-aggregator.ts';
import { renderMetrics, type CertificateInfo } from '../metrics/metrics-exposition.ts';
import { isRemoval, RouteKeys, type TableChange } from '../etcd/route-keys.ts';
import { TableView } from '../table/table-view.ts';
import { UserListWarnings } from '../table/user-list-warnings.ts';
import { HealthChecks } from '../health/health-checks.ts';
import { ensureStickyKey } from '../etcd/sticky-key.ts';
import { RouterRegistration } from './router-registration.ts';
import { RouterCount } from './router-count.ts';
import { routersPrefix } from './router-record.ts';
import { FILE_CERTIFICATE_PREFIX } from '../tls/sni-certificates.ts';
import { readCertificateFiles } from '../tls/tls-certificate.ts';
import { warmWorkerCompileCache } from './worker-compile-cache.ts';
import { WORKER_CONFIG_ENV, type ToPrimary, type ToWorker } from './worker-messages.ts';

const WORKER_ENTRY = fileURLToPath(new URL('./worker-main.ts', import.meta.url));

/**
 * How long one set of session-ticket keys lives. Every worker gets the same keys (the kernel spreads
 * a client's connections over all workers, and a ticket must resume on any of them), made here and
 * never written anywhere. Workers still accept the previous set after a rotation (and renew such
 * tickets under the new one: router/session-tickets.ts); once a day bounds what a leaked key
 * decrypts (forward secrecy).
 */
const TICKET_KEY_LIFETIME = 24 * 60 * 60 * 1000;

export class RouterSupervisor {
  readonly #config: RouterConfig;
  readonly #log: Logger;
  readonly #etcd;
  readonly #keys: RouteKeys;
  readonly #sync: EtcdSync;
  /** The primary's copy of the table, for /routes; it never opens upstream connections. */
  readonly #table: TableView;
  /** Last good change per etcd key: what a new worker is seeded with. */
  readonly #state = new Map<string, TableChange>();
  readonly #admin: AdminServer;
  readonly #workers = new Set<Worker>();
  readonly #listening = new Set<Worker>();
  readonly #metrics = new MetricsAggregator();
  readonly #rates = new CounterRates();
  readonly #startedAt = Date.now();
  #registration: RouterRegistration | null = null;
  readonly #routerCount: RouterCount;
  /** Orders and renews the certificates of routes with "acme": true (the primary only; workers never order). */
  readonly #acme: AcmeCertificates;
  /** Active health checks of the backends of routes with "healthCheck" (router/health/). */
  readonly #checks: HealthChecks;
  readonly #userListWarnings: UserListWarnings;
  /** The cluster's sticky-cookie key, base64, once read from etcd. */
  #stickyKey: string | null = null;
  #workerConfig: RouterConfig;
  #ticketKeys = randomBytes(48);
  #ticketKeyRotation: NodeJS.Timeout | null = null;
  #stopping: Promise<void> | null = null;
  #restartDelay = 250;

  constructor(config: RouterConfig, log: Logger) {
    this.#config = config;
    this.#workerConfig = config;
    this.#log = log.child({ component: 'router' });
    this.#etcd = createEtcdClient(config.etcd);
    this.#keys = new RouteKeys(config.etcdPrefix);
    this.#table = new TableView(config.domain, this.#keys.authPrefix);
    this.#routerCount = new RouterCount(this.#etcd, routersPrefix(config.etcdPrefix), (count) => {
      for (const worker of this.#workers) this.#send(worker, { type: 'routers', count });
    }, this.#log);
    this.#userListWarnings = new UserListWarnings(this.#log);
    this.#acme = new AcmeCertificates(this.#etcd, this.#keys.acme, config, log.child({ component: 'acme' }));
    this.#checks = new HealthChecks(log.child({ component: 'health' }), (unhealthy) => {
      for (const worker of this.#workers) this.#send(worker, { type: 'health', unhealthy: [...unhealthy] });
    });
    this.#sync = new EtcdSync(this.#etcd, this.#keys, log.child({ component: 'etcd-sync' }), {
      probeInterval: config.etcdProbeInterval,
      stallCheckEvery: 10,
      onChanges: (changes) => this.#onChanges(changes),
    });
    this.#admin = new AdminServer(config.admin, {
      ready: () => this.#stopping === null && this.#sync.state.synced && this.#listening.size > 0,
      health: () => this.#health(),
      documents: {
        '/routes': () => ({
          ...this.#table.toJSON(),
          certificates: this.#certificates().map((c) => ({ ...c, notAfter: new Date(c.notAfter).toISOString() })),
          etcd: this.#health().etcd,
          acme: this.#acme.toJSON(),
          health: this.#checks.toJSON(),
        }),
      },
      metrics: () => this.#renderMetrics(),
      ...routerDashboard({
        dashboard: () => this.#dashboard(),
        cluster: () => readClusterStatus(this.#etcd, config.etcdPrefix),
      }),
    });
  }

  async start(): Promise<void> {
    this.#loadCertificateFiles();
    await this.#admin.listen();
    // Port 0 means "any free port"; every worker must bind the same one, so pick it here.
    const http = this.#config.http.port === 0 ? { ...this.#config.http, port: await freePort(this.#config.http.host) } : this.#config.http;
    const configuredHttps = this.#config.https;
    const https = configuredHttps?.port === 0 ? { ...configuredHttps, port: await freePort(configuredHttps.host) } : configuredHttps;
    this.#workerConfig = { ...this.#config, http, https };
    await warmWorkerCompileCache(WORKER_ENTRY);
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], silent: false });
    if (https !== null) {
      this.#ticketKeyRotation = setInterval(() => {
        this.#ticketKeys = randomBytes(48);
        for (const worker of this.#workers) this.#send(worker, this.#ticketKeyMessage());
        this.#log.info('TLS session-ticket keys rotated');
      }, TICKET_KEY_LIFETIME).unref();
    }
    const ready = Promise.all(Array.from({ length: this.#config.workers }, () => this.#fork(true)));
    void this.#sync.start().then(() => {
      this.#acme.start();
      void this.#loadStickyKey();
      if (https !== null && this.#certificates().length === 0) {
        this.#log.warn({ https: `${https.host}:${https.port}` }, `HTTPS listener has no certificate: handshakes fail until one is put under ${this.#keys.tlsPrefix}<name> or given with --cert/--key`);
      }
    });
    await ready;
    this.#registration = new RouterRegistration(this.#etcd, `${routersPrefix(this.#config.etcdPrefix)}${this.#config.nodeName}`, {
      node: this.#config.nodeName,
      version: TUG_VERSION,
      pid: process.pid,
      addresses: { http: formatListenAddress(http), https: https === null ? null : formatListenAddress(https), admin: formatListenAddress(this.#config.admin) },
      startedAt: new Date(this.#startedAt).toISOString(),
    }, () => ({ revision: this.#sync.state.revision, healthy: this.#health().ready && this.#sync.state.connected }), this.#log.child({ component: 'registration' }));
    this.#registration.start();
    this.#routerCount.start();
    this.#log.info({ http: `${http.host}:${http.port}`, https: https === null ? 'off' : `${https.host}:${https.port}`, admin: `${this.#config.admin.host}:${this.#config.admin.port}`, workers: this.#config.workers }, 'router listening');
  }

  /**
   * Graceful stop: /healthz turns 503 at once, the workers keep serving for --drain-delay (a load
   * balancer sends new connections until its probe sees the 503; a listener closed before that
   * refuses them), then they drain in-flight requests, then everything closes.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      for (const worker of this.#workers) this.#send(worker, { type: 'draining' });
      if (this.#config.drainDelay > 0) {
        this.#log.info({ drainDelay: this.#config.drainDelay }, '/healthz is 503; serving until the drain delay ends');
        await new Promise((resolve) => setTimeout(resolve, this.#config.drainDelay));
      }
      this.#log.info({ drainTimeout: this.#config.drainTimeout }, 'draining');
      if (this.#ticketKeyRotation !== null) clearInterval(this.#ticketKeyRotation);
      const exited = [...this.#workers].map((worker) => new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        this.#send(worker, { type: 'drain' });
      }));
      const deadline = setTimeout(() => {
        for (const worker of this.#workers) worker.process.kill('SIGKILL');
      }, this.#config.drainTimeout + 5000);
      await Promise.all(exited);
      clearTimeout(deadline);
      this.#routerCount.close();
      this.#checks.close();
      await this.#registration?.close();
      await this.#acme.close();
      await this.#sync.close();
      this.#etcd.close();
      await this.#admin.close();
      this.#log.info('stopped');
    })();
    return this.#stopping;
  }

  #fork(initial: boolean): Promise<void> {
    const worker = cluster.fork({ [WORKER_CONFIG_ENV]: JSON.stringify(this.#workerConfig) });
    this.#workers.add(worker);
    // Before anything else, so that no ticket is issued under a worker's own keys (a restarted worker too).
    if (this.#workerConfig.https !== null) this.#send(worker, this.#ticketKeyMessage());
    this.#send(worker, { type: 'changes', changes: [...this.#state.values()] });
    this.#send(worker, { type: 'routers', count: this.#routerCount.count });
    if (this.#checks.unhealthy.size > 0) this.#send(worker, { type: 'health', unhealthy: [...this.#checks.unhealthy] });
    if (this.#stickyKey !== null) this.#send(worker, { type: 'sticky-key', key: this.#stickyKey });
    return new Promise((resolve, reject) => {
      worker.on('message', (message: ToPrimary) => {
        if (message.type === 'listening') {
          this.#listening.add(worker);
          this.#restartDelay = 250;
          resolve();
        } else if (message.type === 'metrics') {
          this.#metrics.receive(worker, message.id, message.snapshot);
        } else if (message.type === 'fatal') {
          this.#log.fatal({ worker: worker.process.pid }, message.message);
          if (initial) reject(new Error(message.message));
        }
      });
      worker.on('exit', (code, signal) => {
        this.#workers.delete(worker);
        this.#metrics.retire(worker);
        const wasListening = this.#listening.delete(worker);
        if (this.#stopping !== null) return;
        if (!wasListening && initial) {
          reject(new Error(`router worker exited before listening (code ${code}, signal ${signal})`));
          return;
        }
        this.#log.error({ worker: worker.process.pid, code, signal, restartInMs: this.#restartDelay }, 'router worker died; restarting it');
        setTimeout(() => {
          if (this.#stopping === null) this.#fork(false).catch(() => {});
        }, this.#restartDelay).unref();
        this.#restartDelay = Math.min(this.#restartDelay * 2, 10_000);
      });
    });
  }

  #onChanges(changes: readonly TableChange[]): void {
    for (const change of changes) {
      if (isRemoval(change)) this.#state.delete(change.key);
      else this.#state.set(change.key, change);
    }
    this.#table.apply(changes);
    this.#userListWarnings.observe(changes, this.#table);
    this.#acme.observe(changes);
    const message: ToWorker = { type: 'changes', changes };
    for (const worker of this.#workers) this.#send(worker, message);
    // Only route changes and instances of checked services can change what is checked.
    if (changes.some((c) => c.kind === 'route' || (c.kind === 'backend' && this.#checks.watches(c.service)))) this.#checks.update(this.#table.routes(), this.#table.services());
  }

  /** Reads (or creates) the cluster's sticky-cookie key, retrying while etcd does not answer. */
  async #loadStickyKey(): Promise<void> {
    for (let delay = 1000; this.#stopping === null; delay = Math.min(delay * 2, 30_000)) {
      try {
        const key = await ensureStickyKey(this.#etcd, this.#config.etcdPrefix);
        if (typeof key === 'string') {
          this.#log.error({ err: key }, 'sticky sessions are off: the cluster key is unusable (delete it to have a new one made)');
          return;
        }
        this.#stickyKey = key.toString('base64');
        for (const worker of this.#workers) this.#send(worker, { type: 'sticky-key', key: this.#stickyKey });
        return;
      } catch (err) {
        this.#log.warn({ err: (err as Error).message, retryInMs: delay }, 'cannot read the sticky-session key from etcd yet');
        await new Promise((resolve) => setTimeout(resolve, delay).unref());
      }
    }
  }

  /**
   * --cert/--key pairs become certificate changes like etcd's (checked again: the files may have
   * changed since the flags were validated), seeded before anything from etcd.
   */
  #loadCertificateFiles(): void {
    for (const { cert, key } of this.#config.certFiles) {
      const certificate = readCertificateFiles(cert, key);
      if (typeof certificate === 'string') throw new Error(`--cert ${cert} --key ${key}: ${certificate}`);
      const name = `${FILE_CERTIFICATE_PREFIX}${cert}`;
      this.#state.set(name, { kind: 'certificate', key: name, name, certificate });
      this.#log.info({ cert, hosts: certificate.hosts, notAfter: new Date(certificate.notAfter).toISOString() }, 'certificate loaded from file');
    }
  }

  async #renderMetrics(): Promise<string> {
    const workers = [...this.#workers].filter((w) => w.isConnected());
    const merged = await this.#metrics.collect(workers, (worker, id) => this.#send(worker, { type: 'metrics-request', id }));
    const services = new Map<string, string[]>();
    // Instances sharing an address are one backend (one Backend object, one series).
    for (const { name, instances } of this.#table.services()) services.set(name, [...new Set(instances.map((i) => i.address))]);
    return renderMetrics(merged, {
      etcd: this.#sync.state,
      workers: { configured: this.#config.workers, listening: this.#listening.size },
      services,
      certificates: this.#certificates(),
    }) + this.#acme.metricsText() + this.#checks.metricsText();
  }

  /** The dashboard's data: the same worker scrape as /metrics, and the primary's table and state. */
  async #dashboard(): Promise<DashboardData> {
    const workers = [...this.#workers].filter((w) => w.isConnected());
    const metrics = await this.#metrics.collect(workers, (worker, id) => this.#send(worker, { type: 'metrics-request', id }));
    const now = Date.now();
    const routes = [];
    for (const change of this.#state.values()) if (change.kind === 'route' && change.rule !== null) routes.push({ name: change.name, rule: this.#table.ruleView(change.rule) });
    const health = this.#health();
    return buildDashboard({
      now,
      router: { node: this.#config.nodeName, version: TUG_VERSION, startedAt: this.#startedAt, ready: health.ready, draining: health.draining, admin: formatListenAddress(this.#config.admin) },
      etcd: { endpoints: this.#config.etcd, prefix: this.#config.etcdPrefix, ...this.#sync.state },
      workers: { configured: this.#config.workers, processes: [...this.#workers].map((w) => ({ pid: w.process.pid ?? 0, listening: this.#listening.has(w) })) },
      services: this.#table.services(),
      routes,
      certificates: this.#certificates(),
      metrics,
      rates: this.#rates.observe(metrics.requests, now),
    });
  }

  /** The certificates the HTTPS listener serves (never their keys). */
  #certificates(): CertificateInfo[] {
    const certificates: CertificateInfo[] = [];
    for (const change of this.#state.values()) {
      if (change.kind !== 'certificate' || change.certificate === null) continue;
      const file = change.name.startsWith(FILE_CERTIFICATE_PREFIX);
      certificates.push({
        name: file ? change.name.slice(FILE_CERTIFICATE_PREFIX.length) : change.name,
        source: file ? 'file' : 'etcd',
        hosts: change.certificate.hosts,
        notAfter: change.certificate.notAfter,
      });
    }
    return certificates;
  }

  #ticketKeyMessage(): ToWorker {
    return { type: 'ticket-keys', keys: this.#ticketKeys.toString('base64') };
  }

  #send(worker: Worker, message: ToWorker): void {
    if (worker.isConnected()) worker.send(message, undefined, () => {});
  }

  #health(): { ready: boolean; draining: boolean; workers: object; etcd: object } {
    const state = this.#sync.state;
    return {
      ready: this.#stopping === null && state.synced && this.#listening.size > 0,
      draining: this.#stopping !== null,
      workers: { configured: this.#config.workers, listening: this.#listening.size },
      etcd: {
        synced: state.synced,
        connected: state.connected,
        revision: state.revision,
        secondsSinceContact: state.lastContact === 0 ? null : Math.round((Date.now() - state.lastContact) / 100) / 10,
      },
    };
  }
}
