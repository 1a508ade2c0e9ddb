// A real etcd (Debian's etcd-server) on free loopback ports with a temporary
// data dir, and Debian's etcdctl to talk to it. Every process started here is
// ended by its pid in stop()/close().
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

export class EtcdServer {
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly endpoint: string;
  #process: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();
  #root: string;
  #generation = 0;
  log = '';

  private constructor(root: string, clientPort: number, peerPort: number) {
    this.#root = root;
    this.clientPort = clientPort;
    this.peerPort = peerPort;
    this.dataDir = join(root, 'data');
    this.endpoint = `http://127.0.0.1:${clientPort}`;
  }

  static async start(): Promise<EtcdServer> {
    const root = await mkdtemp(join(tmpdir(), 'tug-etcd-'));
    const server = new EtcdServer(root, await freePort(), await freePort());
    await server.resume();
    return server;
  }

  get running(): boolean {
    return this.#process !== null;
  }

  /** Starts (again) on the same ports and data dir. */
  async resume(): Promise<void> {
    if (this.#process) return;
    const name = `tug-test-${this.#generation++}`;
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn('etcd', [
      '--name', 'tug-test',
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.endpoint,
      '--advertise-client-urls', this.endpoint,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `tug-test=${peer}`,
      '--initial-cluster-token', name,
      '--log-level', 'warn',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (d) => { this.log += d; });
    child.stderr!.on('data', (d) => { this.log += d; });
    this.#process = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => { if (this.#process === child) this.#process = null; });
    await waitFor(async () => {
      if (this.#process !== child) throw new Error(`etcd exited: ${this.log.slice(-2000)}`);
      const res = await fetch(`${this.endpoint}/health`);
      return res.ok && ((await res.json()) as { health: string }).health === 'true';
    }, { timeout: 15_000, interval: 50, what: 'etcd to be healthy' });
  }

  /** Stops the process (SIGTERM, or SIGKILL) and waits for it to exit; data is kept. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#process;
    if (!child) return;
    child.kill(signal);
    await this.#exited;
    this.#process = null;
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
