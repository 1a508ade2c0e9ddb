// Runs the real `tug router` as a child process (the same entry point operators
// use) against a test etcd, and ends it by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './ports.ts';
import { TUG, TugProcess, type Spawner } from './tug-process.ts';
import { waitFor } from './wait.ts';

export interface RouterOptions {
  readonly etcd: string;
  readonly workers?: number;
  readonly domain?: string;
  readonly args?: readonly string[];
  /** Start the HTTPS listener on a free port (default: --https off). */
  readonly https?: boolean;
  /** Wait for /healthz 200 (default true). */
  readonly waitReady?: boolean;
  /** Address the HTTP and admin listeners bind (default 127.0.0.1). */
  readonly host?: string;
  /** Fixed ports (to restart a router where a load balancer expects it); free ports by default. */
  readonly httpPort?: number;
  readonly adminPort?: number;
  /** Starts the process (e.g. inside a network namespace); node's spawn by default. */
  readonly spawn?: Spawner;
}

export class RouterProcess extends TugProcess {
  readonly httpPort: number;
  readonly adminPort: number;
  /** The address its listeners bind. */
  host = '127.0.0.1';
  /** 0 when the HTTPS listener is off. */
  httpsPort = 0;

  constructor(child: ChildProcess, httpPort: number, adminPort: number) {
    super(child);
    this.httpPort = httpPort;
    this.adminPort = adminPort;
  }

  async health(): Promise<{ status: number; body: Record<string, any> }> {
    const res = await fetch(`http://${this.host}:${this.adminPort}/healthz`);
    return { status: res.status, body: (await res.json()) as Record<string, any> };
  }

  async routes(): Promise<Record<string, any>> {
    const res = await fetch(`http://${this.host}:${this.adminPort}/routes`);
    return (await res.json()) as Record<string, any>;
  }
}

export async function startRouter(options: RouterOptions): Promise<RouterProcess> {
  const host = options.host ?? '127.0.0.1';
  const httpPort = options.httpPort ?? await freePort();
  const adminPort = options.adminPort ?? await freePort();
  const httpsPort = options.https ? await freePort() : 0;
  const args = [
    TUG, 'router',
    '--http', `${host}:${httpPort}`,
    '--https', options.https ? `${host}:${httpsPort}` : 'off',
    '--admin', `${host}:${adminPort}`,
    '--etcd', options.etcd,
    '--workers', String(options.workers ?? 1),
    '--drain-timeout', '5s',
    ...(options.domain === undefined ? ['--domain', 'test'] : options.domain === '' ? [] : ['--domain', options.domain]),
    ...(options.args ?? []),
  ];
  const child = (options.spawn ?? spawn)(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  const router = new RouterProcess(child, httpPort, adminPort);
  router.host = host;
  router.httpsPort = httpsPort;
  if (options.waitReady !== false) {
    try {
      await waitFor(async () => (await router.health()).status === 200, { timeout: 15_000, interval: 25, what: 'router /healthz 200' });
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\nrouter output:\n${router.output.slice(-4000)}`);
    }
  }
  return router;
}
