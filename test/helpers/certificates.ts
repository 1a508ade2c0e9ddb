// Test certificates made with Debian's openssl: one CA, and leaf certificates
// for the names a test needs (exact names, `*.domain` wildcards), in a
// temporary directory removed by close().
import { randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface IssuedCertificate {
  readonly cert: string;
  readonly key: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The leaf's subject CN, which tests read back from handshakes. */
  readonly commonName: string;
  /** The JSON value of an etcd `/tls/<name>` key. */
  readonly etcdValue: string;
}

export class TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  #serial = 0;

  private constructor(dir: string) {
    this.dir = dir;
    this.caFile = join(dir, 'ca.crt');
  }

  static async create(): Promise<TestCertificates> {
    const certificates = new TestCertificates(await mkdtemp(join(tmpdir(), 'tug-tls-')));
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-sha256', '-days', '3',
      '-keyout', join(certificates.dir, 'ca.key'), '-out', certificates.caFile, '-subj', '/CN=Tug Test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    return certificates;
  }

  /** A leaf signed by the CA: CN `commonName`, subjectAltName DNS entries `hosts` (and IPs). */
  async issue(commonName: string, hosts: readonly string[], { ips = [] as readonly string[], days = 2 } = {}): Promise<IssuedCertificate> {
    const base = join(this.dir, `leaf-${++this.#serial}`);
    const [keyFile, csrFile, certFile, extFile] = ['key', 'csr', 'crt', 'ext'].map((ext) => `${base}.${ext}`);
    const san = [...hosts.map((h) => `DNS:${h}`), ...ips.map((ip) => `IP:${ip}`)].join(',');
    await writeFile(extFile, `${san ? `subjectAltName=${san}\n` : ''}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n`);
    await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${commonName}`]);
    await run('openssl', [
      'x509', '-req', '-in', csrFile, '-CA', this.caFile, '-CAkey', join(this.dir, 'ca.key'), '-set_serial', `0x${randomBytes(16).toString('hex')}`,
      '-sha256', '-days', String(days), '-extfile', extFile, '-out', certFile,
    ]);
    const [cert, key] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    return { cert, key, certFile, keyFile, commonName, etcdValue: JSON.stringify({ cert, key }) };
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
