// The Docker registry itself (distribution) in the tests: Debian's
// `docker-registry` (distribution 2.8) on its filesystem driver, a real
// process on a free loopback port, ended by its pid. Debian builds it without
// the Azure driver, so its storage tree is what crosses over: copied from disk
// into an Azure container, or from a container onto disk, under blob names
// the test states itself (never computed by the code under test).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const BINARY = 'docker-registry';

/** Why distribution cannot run here, or null when it can. */
export function distributionUnavailable(): string | null {
  const probe = spawnSync(BINARY, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return `${BINARY} (Debian package docker-registry, distribution 2.8) is not installed; scripts/setup.sh installs it`;
  }
  return null;
}

export class DistributionRegistry {
  readonly port: number;
  /** The filesystem driver's rootdirectory: storage path `/docker/…` is file `<root>/docker/…`. */
  readonly root: string;
  readonly #child: ChildProcess;
  readonly #exited: Promise<void>;
  readonly #config: string;
  output = '';

  private constructor(child: ChildProcess, port: number, root: string, config: string) {
    this.#child = child;
    this.port = port;
    this.root = root;
    this.#config = config;
    child.stdout!.on('data', (d) => { this.output += d; });
    child.stderr!.on('data', (d) => { this.output += d; });
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  /**
   * Serves the storage tree under `root` (created when missing; an empty registry then).
   * `auth`: distribution's `auth` section (htpasswd or token); /v2/ then answers 401.
   */
  static async start(root: string, options: { auth?: Record<string, unknown> } = {}): Promise<DistributionRegistry> {
    await mkdir(root, { recursive: true });
    const port = await freePort();
    const configDir = await mkdtemp(join(tmpdir(), 'tug-distribution-config-'));
    const config = join(configDir, 'config.yml');
    // JSON is YAML: no YAML writer needed. No health checks, no upload purging.
    await writeFile(config, JSON.stringify({
      version: '0.1',
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: root }, delete: { enabled: true }, maintenance: { uploadpurging: { enabled: false } } },
      http: { addr: `127.0.0.1:${port}`, secret: 'tug-tests' },
      ...(options.auth ? { auth: options.auth } : {}),
    }));
    const child = spawn(BINARY, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    const registry = new DistributionRegistry(child, port, root, configDir);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`${BINARY} exited with ${child.exitCode}`);
        return (await fetch(`${registry.url}/v2/`)).status === (options.auth ? 401 : 200);
      }, { timeout: 15_000, interval: 25, what: `${BINARY} /v2/ to answer (401 with auth)` });
    } catch (err) {
      await registry.close();
      throw new Error(`${(err as Error).message}\n${BINARY} output:\n${registry.output.slice(-4000)}`);
    }
    return registry;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The process id (the bench reads its CPU time). */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Host and port, as skopeo names a registry. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000);
    await this.#exited;
    clearTimeout(timer);
    await rm(this.#config, { recursive: true, force: true });
  }
}

/** Every file of a storage tree as storage paths (`/docker/registry/v2/…`), sorted. */
export async function storageTreePaths(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => `/${relative(root, join(e.parentPath, e.name))}`).sort();
}

/** Uploads every file of a storage tree as a blob named `nameOf(storage path)`; returns the names. */
export async function uploadStorageTree(container: ContainerClient, root: string, nameOf: (path: string) => string): Promise<string[]> {
  const names: string[] = [];
  for (const path of await storageTreePaths(root)) {
    const bytes = await readFile(join(root, path));
    const name = nameOf(path);
    await container.getBlockBlobClient(name).upload(bytes, bytes.length);
    names.push(name);
  }
  return names;
}

/** Writes every blob whose name starts with `prefix` into a storage tree at `pathOf(name)`; returns the paths. */
export async function downloadStorageTree(container: ContainerClient, prefix: string, root: string, pathOf: (name: string) => string): Promise<string[]> {
  const paths: string[] = [];
  for await (const item of container.listBlobsFlat({ prefix })) {
    const path = pathOf(item.name);
    const file = join(root, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, await container.getBlobClient(item.name).downloadToBuffer());
    paths.push(path);
  }
  return paths.sort();
}
