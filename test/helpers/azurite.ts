// A real Azure Blob emulator: Azurite's blob server (the `azurite` npm
// package), on a free loopback port with its data in a temporary directory.
// stop()/resume() keep the port and the data, to simulate a storage outage.
// The process started here is ended by its pid.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { freePort } from './ports.ts';
import { RestartableProcess } from './restartable-process.ts';
import { waitFor } from './wait.ts';

const AZURITE_BLOB = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
/** Azurite's well-known development account. */
const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export class AzuriteServer {
  readonly port: number;
  readonly location: string;
  /** The address it listens on (loopback unless start() was given another). */
  readonly host: string;
  readonly #process: RestartableProcess;

  private constructor(port: number, location: string, host: string) {
    this.port = port;
    this.location = location;
    this.host = host;
    this.#process = new RestartableProcess(() => spawn(process.execPath, [
      AZURITE_BLOB,
      '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose',
      '--blobHost', host, '--blobPort', String(port),
      '--location', location,
    ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Azurite's output so far. */
  get log(): string {
    return this.#process.log;
  }

  static async start(host = '127.0.0.1'): Promise<AzuriteServer> {
    const server = new AzuriteServer(await freePort(host), await mkdtemp(join(tmpdir(), 'tug-azurite-')), host);
    await server.resume();
    return server;
  }

  get connectionString(): string {
    return `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};BlobEndpoint=http://${this.host}:${this.port}/${ACCOUNT};`;
  }

  get running(): boolean {
    return this.#process.running;
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** A client for looking at what the registry stored (no retries: a test wants the truth now). */
  container(name: string): ContainerClient {
    return BlobServiceClient.fromConnectionString(this.connectionString, { retryOptions: { maxTries: 1 } }).getContainerClient(name);
  }

  /** Every committed blob name in `container`, sorted. */
  async blobNames(container: string, prefix = ''): Promise<string[]> {
    const names: string[] = [];
    for await (const item of this.container(container).listBlobsFlat({ prefix })) names.push(item.name);
    return names.sort();
  }

  /** Starts (again) on the same port with the same data. */
  async resume(): Promise<void> {
    if (this.#process.running) return;
    const exited = this.#process.start('azurite');
    await waitFor(async () => {
      exited();
      const res = await fetch(`http://${this.host}:${this.port}/${ACCOUNT}?comp=list`);
      await res.arrayBuffer();
      return true;
    }, { timeout: 20_000, interval: 50, what: 'azurite to listen' });
  }

  /** Stops the emulator (gracefully, so its data is saved; SIGKILL for a crash) and waits for it to exit. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return this.#process.stop(signal, 10_000);
  }

  async close(): Promise<void> {
    await this.stop();
    await rm(this.location, { recursive: true, force: true });
  }
}
