// A real etcd (Debian's etcd-server) on free loopback ports with a temporary
// data dir, and Debian's etcdctl to talk to it. Every process started here is
// ended by its pid in stop()/close().
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { RestartableProcess } from './restartable-process.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

export class EtcdServer {
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly endpoint: string;
  readonly #process: RestartableProcess;
  readonly #root: string;
  #generation = 0;

  private constructor(root: string, clientPort: number, peerPort: number) {
    this.#root = root;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.dataDir = join(root, 'data');
    this.endpoint = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    this.#process = new RestartableProcess(() => spawn('etcd', [
      '--name', 'tug-test',
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `tug-test=${peer}`,
      // A new token per start: a wiped etcd is a new cluster.
      '--initial-cluster-token', `tug-test-${this.#generation++}`,
      '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** etcd's output so far. */
  get log(): string {
    return this.#process.log;
  }

  static async start(): Promise<EtcdServer> {
    const root = await mkdtemp(join(tmpdir(), 'tug-etcd-'));
    const server = new EtcdServer(root, await freePort(), await freePort());
    await server.resume();
    return server;
  }

  get running(): boolean {
    return this.#process.running;
  }

  /** Starts (again) on the same ports and data dir. */
  async resume(): Promise<void> {
    if (this.#process.running) return;
    const exited = this.#process.start('etcd');
    await waitFor(async () => {
      exited();
      const res = await fetch(`${this.endpoint}/health`);
      return res.ok && ((await res.json()) as { health: string }).health === 'true';
    }, { timeout: 15_000, interval: 50, what: 'etcd to be healthy' });
  }

  /** Stops the process (SIGTERM, or SIGKILL) and waits for it to exit; data is kept. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.#process.stop(signal);
  }

  /** Stops etcd, deletes its data and starts an empty one on the same ports (a wiped cluster). */
  async wipe(): Promise<void> {
    await this.stop();
    await rm(this.dataDir, { recursive: true, force: true });
    await this.resume();
  }

  async etcdctl(...args: string[]): Promise<string> {
    const { stdout } = await run('etcdctl', ['--endpoints', this.endpoint, ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
      timeout: 10_000,
    });
    return stdout.trim();
  }

  async put(key: string, value: string, lease?: string): Promise<void> {
    await this.etcdctl('put', ...(lease ? [`--lease=${lease}`] : []), key, value);
  }

  async del(key: string): Promise<void> {
    await this.etcdctl('del', key);
  }

  /** Grants a lease and returns its id in the hex form etcdctl takes. */
  async grantLease(ttlSeconds: number): Promise<string> {
    const out = await this.etcdctl('lease', 'grant', String(ttlSeconds));
    const match = /lease ([0-9a-f]+) granted/.exec(out);
    if (!match) throw new Error(`unexpected etcdctl output: ${out}`);
    return match[1];
  }

  async revision(): Promise<number> {
    const out = await this.etcdctl('endpoint', 'status', '-w', 'json');
    return (JSON.parse(out) as { Status: { header: { revision: number } } }[])[0].Status.header.revision;
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.#root, { recursive: true, force: true });
  }
}
