// Runs the real `tug registry` as a child process (the entry point operators
// use) against a test Azurite, and ends it by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { freePort } from './ports.ts';
import { TUG, TugProcess, type Spawner } from './tug-process.ts';
import { waitFor } from './wait.ts';

const UPLOAD_DIR_PREFIX = 'tug-registry-uploads-';

export interface RegistryOptions {
  readonly connectionString: string;
  readonly container?: string;
  /** Reuse an upload dir (to restart a registry over the same spool); a fresh one by default. */
  readonly uploadDir?: string;
  /** Reuse a port (to restart a registry where clients expect it). */
  readonly port?: number;
  readonly args?: readonly string[];
  /** Pass the connection string through AZURE_STORAGE_CONNECTION_STRING instead of the flag. */
  readonly connectionStringFromEnv?: boolean;
  /** Address to listen on (default 127.0.0.1; any other needs `--htpasswd` in args). */
  readonly host?: string;
  /** Basic-auth credentials the readiness check sends (with `--htpasswd`). */
  readonly credentials?: { readonly user: string; readonly password: string };
  /** Starts the process (e.g. inside a network namespace); node's spawn by default. */
  readonly spawn?: Spawner;
}

export class RegistryProcess extends TugProcess {
  readonly port: number;
  readonly uploadDir: string;
  /** The admin listener's port (/metrics, /healthz) on 127.0.0.1; null when the test gave its own `--admin`. */
  readonly adminPort: number | null;
  /** The address it listens on. */
  listenHost = '127.0.0.1';

  constructor(child: ChildProcess, port: number, uploadDir: string, adminPort: number | null = null) {
    super(child);
    this.port = port;
    this.uploadDir = uploadDir;
    this.adminPort = adminPort;
  }

  get url(): string {
    return `http://${this.listenHost}:${this.port}`;
  }

  /** Host and port, as skopeo and docker name a registry. */
  get host(): string {
    return `${this.listenHost}:${this.port}`;
  }


  /** Stops the registry and removes the upload spool the helper made for it (kept by stop(), for restarts). */
  async close(): Promise<void> {
    await this.stop();
    if (basename(this.uploadDir).startsWith(UPLOAD_DIR_PREFIX)) await rm(this.uploadDir, { recursive: true, force: true });
  }

}

export async function startRegistry(options: RegistryOptions): Promise<RegistryProcess> {
  const port = options.port ?? await freePort();
  const uploadDir = options.uploadDir ?? await mkdtemp(join(tmpdir(), UPLOAD_DIR_PREFIX));
  // Never the default admin port: several registries run at once in the tests.
  const adminPort = options.args?.includes('--admin') ? null : await freePort();
  const args = [
    TUG, 'registry',
    '--listen', `${options.host ?? '127.0.0.1'}:${port}`,
    '--container', options.container ?? 'registry',
    '--upload-dir', uploadDir,
    '--drain-timeout', '5s',
    ...(options.connectionStringFromEnv ? [] : ['--azure-connection-string', options.connectionString]),
    ...(adminPort === null ? [] : ['--admin', `127.0.0.1:${adminPort}`]),
    ...(options.args ?? []),
  ];
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.AZURE_STORAGE_CONNECTION_STRING;
  if (options.connectionStringFromEnv) env.AZURE_STORAGE_CONNECTION_STRING = options.connectionString;
  const child = (options.spawn ?? spawn)(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  const registry = new RegistryProcess(child, port, uploadDir, adminPort);
  registry.listenHost = options.host ?? '127.0.0.1';
  const auth: Record<string, string> = options.credentials
    ? { authorization: `Basic ${Buffer.from(`${options.credentials.user}:${options.credentials.password}`).toString('base64')}` }
    : {};
  try {
    await waitFor(async () => {
      if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}`);
      return [200, 401].includes((await fetch(`${registry.url}/v2/`, { headers: auth })).status);
    }, { timeout: 15_000, interval: 25, what: 'registry /v2/ to answer (200, or 401 with auth)' });
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\nregistry output:\n${registry.output.slice(-4000)}`);
  }
  return registry;
}
