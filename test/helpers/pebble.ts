// Debian's pebble (the ACME test server) and pebble-challtestsrv (its mock DNS,
// answering every name with 127.0.0.1) on free loopback ports, for the ACME
// tests. pebble validates HTTP-01 on `httpPort` (the router's HTTP listener, or
// a proxy in front of routers); its own HTTPS certificate comes from the test
// CA, which `caFile` names for --acme-ca-file. Real validation always
// (PEBBLE_VA_ALWAYS_VALID is never set); PEBBLE_VA_NOSLEEP=1 so it validates at once.
// Every process started here is ended by its pid in close().
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch } from 'undici';
import { TestCertificates } from './certificates.ts';
import { freePort } from './ports.ts';
import { RestartableProcess } from './restartable-process.ts';
import { waitFor } from './wait.ts';

export interface PebbleOptions {
  /** The port pebble connects to for HTTP-01 validation. */
  readonly httpPort: number;
  /** Lifetime of the certificates it issues, seconds (pebble's default is about five years). */
  readonly validitySeconds?: number;
}

export class Pebble {
  readonly directory: string;
  /** The CA of pebble's own HTTPS listener (for --acme-ca-file). */
  readonly caFile: string;
  readonly managementPort: number;
  readonly #pebble: RestartableProcess;
  readonly #dns: RestartableProcess;
  readonly #root: string;
  readonly #certificates: TestCertificates;
  readonly #agent: Agent;

  private constructor(root: string, certificates: TestCertificates, ports: { acme: number; management: number; dns: number; dnsManagement: number }, config: string, agent: Agent) {
    this.#root = root;
    this.#certificates = certificates;
    this.#agent = agent;
    this.caFile = certificates.caFile;
    this.directory = `https://127.0.0.1:${ports.acme}/dir`;
    this.managementPort = ports.management;
    this.#dns = new RestartableProcess(() => spawn('pebble-challtestsrv', [
      '-dns01', `127.0.0.1:${ports.dns}`,
      '-management', `127.0.0.1:${ports.dnsManagement}`,
      '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.#pebble = new RestartableProcess(() => spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${ports.dns}`, '-strict=false'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1' },
    }));
  }

  static async start(options: PebbleOptions): Promise<Pebble> {
    const root = await mkdtemp(join(tmpdir(), 'tug-pebble-'));
    const certificates = await TestCertificates.create();
    const listener = await certificates.issue('pebble', ['localhost'], { ips: ['127.0.0.1'] });
    const ports = { acme: await freePort(), management: await freePort(), dns: await freePort(), dnsManagement: await freePort() };
    const config = join(root, 'pebble-config.json');
    await writeFile(config, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${ports.acme}`,
        managementListenAddress: `127.0.0.1:${ports.management}`,
        certificate: listener.certFile,
        privateKey: listener.keyFile,
        httpPort: options.httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.validitySeconds === undefined ? {} : { certificateValidityPeriod: options.validitySeconds }),
      },
    }));
    const agent = new Agent({ connect: { ca: await readFile(certificates.caFile, 'utf8') } });
    const pebble = new Pebble(root, certificates, ports, config, agent);
    await pebble.resume();
    return pebble;
  }

  get log(): string {
    return this.#pebble.log;
  }

  /** Starts pebble (again) on the same ports; a restarted pebble has a new root and forgets every account. */
  async resume(): Promise<void> {
    const dnsExited = this.#dns.start('pebble-challtestsrv');
    const exited = this.#pebble.start('pebble');
    await waitFor(async () => {
      dnsExited();
      exited();
      const res = await fetch(this.directory, { dispatcher: this.#agent });
      return res.ok;
    }, { timeout: 15_000, interval: 50, what: 'pebble to serve its directory' });
  }

  /** Stops pebble (its directory then refuses connections); the mock DNS keeps running. */
  stop(): Promise<void> {
    return this.#pebble.stop('SIGTERM', 5000);
  }

  /** The PEM root pebble signs with now (its management API, /roots/0). */
  async root(): Promise<string> {
    const res = await fetch(`https://127.0.0.1:${this.managementPort}/roots/0`, { dispatcher: this.#agent });
    if (!res.ok) throw new Error(`pebble /roots/0: ${res.status}`);
    return res.text();
  }

  async close(): Promise<void> {
    await Promise.all([this.#pebble.stop('SIGTERM', 5000), this.#dns.stop('SIGTERM', 5000)]);
    await this.#agent.close();
    await this.#certificates.close();
    await rm(this.#root, { recursive: true, force: true });
  }
}
