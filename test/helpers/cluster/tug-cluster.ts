// The whole cluster of the seed's architecture on one machine: three hosts
// (hosts-network.ts), a 3-member etcd across them, and on each host Tug's
// router, optionally Tug's registry (on one Azurite in the root namespace,
// playing Azure Blob), and an instance of the app `app` with its `tug
// announce` sidekick; in front, the TCP load balancer playing Azure's. Every
// process is started inside its host and ended by its pid; close() (and
// process exit, via the network) ends them all and removes the hosts.
import { rmSync } from 'node:fs';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import bcrypt from 'bcryptjs';
import { AnnouncerProcess } from '../announcer.ts';
import { AzuriteServer } from '../azurite.ts';
import { freePort } from '../ports.ts';
import { startRegistry, type RegistryProcess } from '../registry.ts';
import { startRouter, type RouterProcess } from '../router.ts';
import type { Spawner } from '../tug-process.ts';
import { waitFor } from '../wait.ts';
import { EtcdCluster } from './etcd-cluster.ts';
import { HostsNetwork, type ClusterHost } from './hosts-network.ts';
import { TcpLoadBalancer } from './tcp-load-balancer.ts';

const APP_INSTANCE = fileURLToPath(new URL('./app-instance.ts', import.meta.url));

/** The router flags of the cluster, beyond addresses and etcd (see the report for why). */
export const ROUTER_FLAGS = ['--workers', '1', '--domain', 'test', '--drain-delay', '1s', '--drain-timeout', '5s', '--connect-timeout', '1s', '--no-access-log'];
/** The announcers' lease TTL, seconds: an instance that vanishes leaves the tables within it. */
export const LEASE_TTL = 3;
export const REGISTRY_USER = { user: 'ci', password: 'cluster-secret' };

export interface ClusterOptions {
  /** Run a registry on every host, over an Azurite (default false). */
  readonly registry?: boolean;
  /** More router flags (after ROUTER_FLAGS). */
  readonly routerArgs?: readonly string[];
  /** Give every router an HTTPS listener too (default false). */
  readonly https?: boolean;
  /**
   * Runs once the hosts exist, before any router: starts what the routers need in the root
   * namespace (the ACME suite's pebble) and returns more router flags and, when it must be known
   * in advance, the load balancer's port.
   */
  readonly prepare?: (network: HostsNetwork) => Promise<{ readonly routerArgs?: readonly string[]; readonly lbPort?: number }>;
}

/** One app instance and its announcer, on one host. */
export class AppInstance {
  readonly service: string;
  readonly name: string;
  readonly host: ClusterHost;
  readonly port: number;
  app: ChildProcess | null = null;
  announcer: AnnouncerProcess | null = null;
  output = '';

  constructor(service: string, name: string, host: ClusterHost, port: number) {
    this.service = service;
    this.name = name;
    this.host = host;
    this.port = port;
  }

  get address(): string {
    return `${this.host.address}:${this.port}`;
  }
}

export class ClusterNode {
  readonly host: ClusterHost;
  router: RouterProcess;
  registry: RegistryProcess | null = null;
  readonly httpPort: number;
  readonly adminPort: number;

  constructor(host: ClusterHost, router: RouterProcess) {
    this.host = host;
    this.router = router;
    this.httpPort = router.httpPort;
    this.adminPort = router.adminPort;
  }
}

export class TugCluster {
  readonly network: HostsNetwork;
  readonly etcd: EtcdCluster;
  readonly nodes: ClusterNode[] = [];
  readonly apps: AppInstance[] = [];
  lb!: TcpLoadBalancer;
  azurite: AzuriteServer | null = null;
  #routerArgs: readonly string[] = [];
  #https = false;
  #work = '';
  #htpasswd = '';
  private constructor(network: HostsNetwork, etcd: EtcdCluster) {
    this.network = network;
    this.etcd = etcd;
    // The network kills what runs in the hosts at exit; Azurite runs in the root namespace.
    network.onRemove(() => {
      const pid = this.azurite?.pid;
      if (pid !== undefined) process.kill(pid, 'SIGKILL');
    });
    // Interrupted before close(): the temporary directories go too (close() removes them itself).
    network.onRemove(() => {
      for (const dir of [this.#work, this.azurite?.location, ...this.nodes.map((n) => n.registry?.uploadDir)]) {
        if (dir) rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  static async start(options: ClusterOptions = {}): Promise<TugCluster> {
    const network = HostsNetwork.create(3);
    let cluster: TugCluster | null = null;
    try {
      const etcd = await EtcdCluster.start(network);
      cluster = new TugCluster(network, etcd);
      await cluster.#startNodes(options);
      return cluster;
    } catch (err) {
      if (cluster) await cluster.close();
      else network.close();
      throw err;
    }
  }

  async #startNodes(options: ClusterOptions): Promise<void> {
    this.#work = await mkdtemp(join(tmpdir(), 'tug-cluster-'));
    const prepared = await options.prepare?.(this.network);
    this.#routerArgs = [...options.routerArgs ?? [], ...prepared?.routerArgs ?? []];
    this.#https = options.https ?? false;
    if (options.registry) {
      this.azurite = await AzuriteServer.start(this.network.rootAddress);
      this.#htpasswd = join(this.#work, 'htpasswd');
      await writeFile(this.#htpasswd, `${REGISTRY_USER.user}:${bcrypt.hashSync(REGISTRY_USER.password, 4)}\n`);
    }
    // Routers start one after the other (two cores); the rest of a host's processes in parallel.
    for (const host of this.network.hosts) {
      const router = await this.#startRouter(host);
      this.nodes.push(new ClusterNode(host, router));
    }
    await Promise.all(this.nodes.map(async (node) => {
      if (options.registry) node.registry = await this.#startRegistry(node.host);
    }));
    for (const host of this.network.hosts) await this.startApp('app', host.name, host);
    this.lb = await TcpLoadBalancer.start(this.network.rootAddress, this.nodes.map((node) => ({
      name: node.host.name,
      host: node.host.address,
      port: node.httpPort,
      probe: { host: node.host.address, port: node.adminPort, path: '/healthz' },
    })), {}, prepared?.lbPort ?? 0);
    await this.waitRouted('app', this.apps.map((a) => a.address));
    await this.lb.waitAllHealthy();
  }

  spawner(host: ClusterHost): Spawner {
    return (command, args, options) => this.network.spawn(host, command, args, options);
  }

  async #port(host: ClusterHost, fixed: number): Promise<number> {
    return this.network.namespaces ? fixed : freePort(host.address);
  }

  async #startRouter(host: ClusterHost, ports?: { http: number; admin: number }): Promise<RouterProcess> {
    return startRouter({
      etcd: this.etcd.local(host),
      host: host.address,
      httpPort: ports?.http ?? await this.#port(host, 8080),
      adminPort: ports?.admin ?? await this.#port(host, 9090),
      domain: '',
      https: this.#https,
      // Network namespaces share the hostname: each router needs its own record under /routers/.
      args: [...ROUTER_FLAGS, '--node-name', host.name, ...this.#routerArgs],
      spawn: this.spawner(host),
    });
  }

  async #startRegistry(host: ClusterHost): Promise<RegistryProcess> {
    return startRegistry({
      connectionString: this.azurite!.connectionString,
      host: host.address,
      port: await this.#port(host, 5000),
      credentials: REGISTRY_USER,
      args: ['--htpasswd', this.#htpasswd, '--no-access-log'],
      spawn: this.spawner(host),
    });
  }

  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.host.name === name);
    if (!node) throw new Error(`no node ${name}`);
    return node;
  }

  app(name: string): AppInstance {
    const app = this.apps.find((a) => a.name === name);
    if (!app) throw new Error(`no app instance ${name}`);
    return app;
  }

  /** Starts an instance of `service` on `host` and its announcer (lease TTL LEASE_TTL s). */
  async startApp(service: string, name: string, host: ClusterHost): Promise<AppInstance> {
    const instance = new AppInstance(service, name, host, await this.#port(host, service === 'app' ? 3000 : 3001 + this.apps.length));
    this.apps.push(instance);
    await this.startAppProcess(instance);
    this.startAnnouncer(instance);
    return instance;
  }

  /** Withdraws an instance (its announcer stops, revoking the lease) and kills its app. */
  async removeApp(instance: AppInstance): Promise<void> {
    await instance.announcer?.stop();
    instance.app?.kill('SIGKILL');
    const at = this.apps.indexOf(instance);
    if (at >= 0) this.apps.splice(at, 1);
  }

  /** Starts (again) the app process of `instance` and waits until it listens. */
  async startAppProcess(instance: AppInstance): Promise<void> {
    const child = this.network.spawn(instance.host, process.execPath, [APP_INSTANCE, instance.host.address, String(instance.port), instance.name], { stdio: ['ignore', 'pipe', 'pipe'] });
    instance.app = child;
    child.stdout!.on('data', (d) => { instance.output += d; });
    child.stderr!.on('data', (d) => { instance.output += d; });
    await waitFor(() => {
      if (child.exitCode !== null) throw new Error(`app ${instance.name} exited: ${instance.output}`);
      return instance.output.includes('listening');
    }, { timeout: 15_000, interval: 20, what: `app ${instance.name} to listen` });
  }

  startAnnouncer(instance: AppInstance): void {
    instance.announcer = new AnnouncerProcess([
      '--service', instance.service,
      '--instance', instance.name,
      '--address', instance.address,
      '--etcd', this.etcd.local(instance.host),
      '--ttl', String(LEASE_TTL),
      '--health', `http://${instance.address}/healthz`,
      // Generous for a loaded 2-core machine: a check that times out withdraws the instance.
      '--health-interval', '1s',
      '--health-timeout', '900ms',
    ], {}, this.spawner(instance.host));
  }

  /** Instances (addresses) of `service` in a router's table. */
  async routed(node: ClusterNode, service: string): Promise<string[]> {
    const routes = await node.router.routes() as { services?: Record<string, { address: string }[]> };
    return (routes.services?.[service] ?? []).map((e) => e.address).sort();
  }

  /** Waits until every running router's table has exactly `addresses` for `service`. */
  async waitRouted(service: string, addresses: readonly string[], { nodes = this.nodes, timeout = 20_000 } = {}): Promise<number> {
    const want = [...addresses].sort().join(',');
    await waitFor(async () => {
      for (const node of nodes) if ((await this.routed(node, service)).join(',') !== want) return false;
      return true;
    }, { timeout, interval: 20, what: `every router to route ${service} to [${want}]` });
    return Date.now();
  }

  /** SIGTERMs a node's router, waits for it to exit, and returns its exit code. */
  async stopRouter(node: ClusterNode, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return node.router.stop(signal);
  }

  /** Starts a node's router again on the same addresses. */
  async restartRouter(node: ClusterNode): Promise<void> {
    node.router = await this.#startRouter(node.host, { http: node.httpPort, admin: node.adminPort });
  }

  async close(): Promise<void> {
    await this.lb?.close();
    await Promise.all(this.apps.map(async (a) => {
      await a.announcer?.stop();
      a.app?.kill('SIGKILL');
    }));
    await Promise.all(this.nodes.map(async (n) => {
      await n.router.stop();
      await n.registry?.close();
    }));
    await this.etcd.close();
    await this.azurite?.close();
    this.network.close();
    if (this.#work) await rm(this.#work, { recursive: true, force: true });
  }
}
