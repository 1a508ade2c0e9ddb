// Debian's pebble (the ACME test server) and pebble-challtestsrv (its mock DNS,
// answering every name with 127.0.0.1) on free loopback ports, for the ACME
// tests. pebble validates HTTP-01 on `httpPort` (the router's HTTP listener, or
// a proxy or load balancer in front of routers), TLS-ALPN-01 on `tlsPort`, of the address its DNS gives
// every name (`dnsAnswer`); its own HTTPS certificate comes from the test
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
  /** The port pebble connects to for TLS-ALPN-01 validation (default: a free port nobody listens on). */
  readonly tlsPort?: number;
  /** Lifetime of the certificates it issues, seconds (pebble's default is about five years). */
  readonly validitySeconds?: number;
  /** Where pebble and its DNS listen (default 127.0.0.1; the cluster suite's root address). */
  readonly address?: string;
  /** The A record the mock DNS gives every name: where validations go (default 127.0.0.1). */
  readonly dnsAnswer?: string;
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

  readonly #address: string;

  private constructor(root: string, certificates: TestCertificates, address: string, dnsAnswer: string, ports: { acme: number; management: number; dns: number; dnsManagement: number }, config: string, agent: Agent) {
    this.#address = address;
    this.#root = root;
    this.#certificates = certificates;
    this.#agent = agent;
    this.caFile = certificates.caFile;
    this.directory = `https://${address}:${ports.acme}/dir`;
    this.managementPort = ports.management;
    this.#dns = new RestartableProcess(() => spawn('pebble-challtestsrv', [
      '-dns01', `${address}:${ports.dns}`,
      '-management', `${address}:${ports.dnsManagement}`,
      '-http01', '', '-https01', '', '-tlsalpn01', '',
      '-defaultIPv4', dnsAnswer, '-defaultIPv6', '',
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.#pebble = new RestartableProcess(() => spawn('pebble', ['-config', config, '-dnsserver', `${address}:${ports.dns}`, '-strict=false'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PEBBLE_VA_NOSLEEP: '1' },
    }));
  }

  static async start(options: PebbleOptions): Promise<Pebble> {
    const address = options.address ?? '127.0.0.1';
    const root = await mkdtemp(join(tmpdir(), 'tug-pebble-'));
    const certificates = await TestCertificates.create();
    const listener = await certificates.issue('pebble', ['localhost'], { ips: [...new Set(['127.0.0.1', address])] });
    const ports = { acme: await freePort(address), management: await freePort(address), dns: await freePort(address), dnsManagement: await freePort(address) };
    const config = join(root, 'pebble-config.json');
    await writeFile(config, JSON.stringify({
      pebble: {
        listenAddress: `${address}:${ports.acme}`,
        managementListenAddress: `${address}:${ports.management}`,
        certificate: listener.certFile,
        privateKey: listener.keyFile,
        httpPort: options.httpPort,
        tlsPort: options.tlsPort ?? await freePort(address),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(options.validitySeconds === undefined ? {} : { certificateValidityPeriod: options.validitySeconds }),
      },
    }));
    const agent = new Agent({ connect: { ca: await readFile(certificates.caFile, 'utf8') } });
    const pebble = new Pebble(root, certificates, address, options.dnsAnswer ?? '127.0.0.1', ports, config, agent);
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
    const res = await fetch(`https://${this.#address}:${this.managementPort}/roots/0`, { dispatcher: this.#agent });
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
