// A 3-member etcd cluster (Debian's etcd), one member per cluster host, with
// Debian's etcdctl to talk to it from the root namespace. Members are stopped
// and started again on the same addresses and data (a crash, a restart), and
// every process started here is ended by its pid.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../ports.ts';
import { RestartableProcess } from '../restartable-process.ts';
import { waitFor } from '../wait.ts';
import type { ClusterHost, HostsNetwork } from './hosts-network.ts';

const run = promisify(execFile);

export class EtcdMember {
  readonly name: string;
  readonly host: ClusterHost;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly #process: RestartableProcess;

  constructor(name: string, host: ClusterHost, clientPort: number, peerPort: number, dataDir: string, network: HostsNetwork, initialCluster: string, token: string) {
    this.name = name;
    this.host = host;
    this.clientUrl = `http://${host.address}:${clientPort}`;
    this.peerUrl = `http://${host.address}:${peerPort}`;
    this.dataDir = dataDir;
    this.#process = new RestartableProcess(() => network.spawn(host, 'etcd', [
      '--name', name,
      '--data-dir', dataDir,
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', this.peerUrl,
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', initialCluster,
      '--initial-cluster-token', token,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', '100',
      '--election-timeout', '1000',
      '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** The member's output so far. */
  get log(): string {
    return this.#process.log;
  }

  get running(): boolean {
    return this.#process.running;
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  start(): void {
    this.#process.start(`etcd member ${this.name}`);
  }

  /** Stops the member (SIGKILL: a crash) and waits for it to exit; its data is kept. */
  stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    return this.#process.stop(signal);
  }
}

export class EtcdCluster {
  readonly members: readonly EtcdMember[];
  readonly #root: string;

  private constructor(network: HostsNetwork, root: string, members: EtcdMember[]) {
    this.#root = root;
    this.members = members;
    // The network kills the members at exit; their data goes with them.
    network.onRemove(() => rmSync(root, { recursive: true, force: true }));
  }

  /** One member per host, started together; resolves when the cluster has a leader. */
  static async start(network: HostsNetwork): Promise<EtcdCluster> {
    const root = await mkdtemp(join(tmpdir(), 'tug-etcd-cluster-'));
    const specs: { name: string; host: ClusterHost; clientPort: number; peerPort: number }[] = [];
    for (const [i, host] of network.hosts.entries()) {
      // In a namespace the host has its own ports; on loopback they are shared with the machine.
      const clientPort = network.namespaces ? 2379 : await freePort(host.address);
      const peerPort = network.namespaces ? 2380 : await freePort(host.address);
      specs.push({ name: `m${i + 1}`, host, clientPort, peerPort });
    }
    const initialCluster = specs.map((m) => `${m.name}=http://${m.host.address}:${m.peerPort}`).join(',');
    const token = `tug-cluster-${process.pid}`;
    const members = specs.map((m) => new EtcdMember(m.name, m.host, m.clientPort, m.peerPort, join(root, m.name), network, initialCluster, token));
    const cluster = new EtcdCluster(network, root, members);
    for (const member of members) member.start();
    await cluster.waitHealthy();
    return cluster;
  }

  /** The client URL of the member on `host`: what a node's router and announcers use, as the units' `--etcd http://127.0.0.1:2379` does. */
  local(host: ClusterHost): string {
    const member = this.members.find((m) => m.host === host);
    if (!member) throw new Error(`no etcd member on ${host.name}`);
    return member.clientUrl;
  }

  /** Every member's client URL, comma-separated (the --etcd flag), `first` first. */
  endpoints(first?: ClusterHost): string {
    const ordered = [...this.members].sort((a, b) => Number(b.host === first) - Number(a.host === first));
    return ordered.map((m) => m.clientUrl).join(',');
  }

  /** Starts a stopped member again on its data. */
  resume(member: EtcdMember): void {
    member.start();
  }

  /** Waits until every running member is healthy (the cluster has a leader and quorum). */
  async waitHealthy(timeout = 20_000): Promise<void> {
    await waitFor(async () => {
      for (const member of this.members.filter((m) => m.running)) {
        const res = await fetch(`${member.clientUrl}/health`, { signal: AbortSignal.timeout(1000) });
        if (!res.ok || ((await res.json()) as { health: string }).health !== 'true') return false;
      }
      return true;
    }, { timeout, interval: 50, what: `etcd members healthy\n${this.members.map((m) => m.log.slice(-500)).join('\n')}` });
  }

  /** The member that is the raft leader now, per the running members. */
  async leader(): Promise<EtcdMember> {
    const running = this.members.filter((m) => m.running);
    const out = await this.etcdctl(running, 'endpoint', 'status', '-w', 'json');
    const statuses = JSON.parse(out) as { Endpoint: string; Status: { leader: string | number; header: { member_id: string | number } } }[];
    const found = statuses.find((s) => String(s.Status.leader) === String(s.Status.header.member_id));
    const member = found && this.members.find((m) => m.clientUrl === found.Endpoint);
    if (!member) throw new Error(`no leader in ${out}`);
    return member;
  }

  async etcdctl(members: readonly EtcdMember[], ...args: string[]): Promise<string> {
    const { stdout } = await run('etcdctl', ['--endpoints', members.map((m) => m.clientUrl).join(','), '--command-timeout', '3s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 10_000,
    });
    return stdout.trim();
  }

  async put(key: string, value: string): Promise<void> {
    await this.etcdctl(this.members.filter((m) => m.running), 'put', key, value);
  }

  async del(key: string): Promise<void> {
    await this.etcdctl(this.members.filter((m) => m.running), 'del', key);
  }

  async get(prefix: string): Promise<string> {
    return this.etcdctl(this.members.filter((m) => m.running), 'get', '--prefix', prefix);
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.stop()));
    await rm(this.#root, { recursive: true, force: true });
  }
}
