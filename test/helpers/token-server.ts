// Runs the real `tug registry token-server` as a child process on a free
// loopback port, with a fresh EC P-256 key pair made by openssl, and ends it
// by its pid. The registry verifies its tokens with `publicKey`; distribution
// (which reads only certificates) with `certificate`, a self-signed
// certificate of the same key.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';
import { TUG, TugProcess } from './tug-process.ts';
import { waitFor } from './wait.ts';

const run = promisify(execFile);

export interface TokenServerOptions {
  readonly htpasswd: string;
  readonly acl?: string;
  readonly issuer?: string;
  readonly service?: string;
  readonly args?: readonly string[];
  /** openssl genpkey's key options; EC P-256 by default. */
  readonly keyAlgorithm?: readonly string[];
}

/** A PEM key pair made by openssl: EC P-256 (ES256) unless told otherwise. */
export async function makeKeyPair(dir: string, name: string, algorithm: readonly string[] = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']): Promise<{ privateKey: string; publicKey: string }> {
  const privateKey = join(dir, `${name}.key`);
  const publicKey = join(dir, `${name}.pub`);
  await run('openssl', ['genpkey', ...algorithm, '-out', privateKey]);
  await run('openssl', ['pkey', '-in', privateKey, '-pubout', '-out', publicKey]);
  return { privateKey, publicKey };
}

export class TokenServerProcess extends TugProcess {
  readonly port: number;
  readonly issuer: string;
  readonly service: string;
  readonly publicKey: string;
  readonly privateKey: string;
  /** A self-signed certificate of the signing key: distribution's `rootcertbundle`. */
  readonly certificate: string;
  #keys = '';

  constructor(child: ReturnType<typeof spawn>, port: number, issuer: string, service: string, keys: { privateKey: string; publicKey: string; certificate: string }) {
    super(child);
    this.certificate = keys.certificate;
    this.port = port;
    this.issuer = issuer;
    this.service = service;
    this.publicKey = keys.publicKey;
    this.privateKey = keys.privateKey;
  }

  /** The realm the registry names in its challenge. */
  get realm(): string {
    return `http://127.0.0.1:${this.port}/token`;
  }

  /** The flags that make `tug registry` trust this server's tokens. */
  get registryArgs(): string[] {
    return ['--auth', 'token', '--token-realm', this.realm, '--token-service', this.service, '--token-issuer', this.issuer, '--token-keys', this.publicKey];
  }

  /** distribution's `auth` section that makes it trust this server's tokens. */
  get distributionAuth(): Record<string, unknown> {
    return { token: { realm: this.realm, service: this.service, issuer: this.issuer, rootcertbundle: this.certificate } };
  }

  /** The `token issued` log lines so far: one per token request answered. */
  issued(): { user: string | null; asked: string[] }[] {
    return this.logs().filter((l) => l.msg === 'token issued').map((l) => ({ user: l.user as string | null, asked: l.asked as string[] }));
  }

  async close(): Promise<void> {
    await this.stop();
    if (this.#keys) await rm(this.#keys, { recursive: true, force: true });
  }

  static async start(options: TokenServerOptions): Promise<TokenServerProcess> {
    const keysDir = await mkdtemp(join(tmpdir(), 'tug-token-keys-'));
    const keys = await makeKeyPair(keysDir, 'token', options.keyAlgorithm);
    const certificate = join(keysDir, 'token.crt');
    await run('openssl', ['req', '-new', '-x509', '-key', keys.privateKey, '-subj', '/CN=tug test token issuer', '-days', '2', '-out', certificate]);
    const port = await freePort();
    const issuer = options.issuer ?? 'tug-test-issuer';
    const service = options.service ?? 'tug-test-registry';
    const child = spawn(process.execPath, [
      TUG, 'registry', 'token-server',
      '--listen', `127.0.0.1:${port}`,
      '--htpasswd', options.htpasswd,
      '--key', keys.privateKey,
      '--issuer', issuer,
      '--service', service,
      ...(options.acl ? ['--acl', options.acl] : []),
      ...(options.args ?? []),
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new TokenServerProcess(child, port, issuer, service, { ...keys, certificate });
    server.#keys = keysDir;
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`token server exited with ${child.exitCode}`);
        return (await fetch(`${server.realm}?service=${service}`)).status === 200;
      }, { timeout: 15_000, interval: 25, what: 'the token server to answer' });
    } catch (err) {
      child.kill('SIGKILL');
      throw new Error(`${(err as Error).message}\ntoken server output:\n${server.output.slice(-4000)}`);
    }
    return server;
  }
}
