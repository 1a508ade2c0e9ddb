// TLS clients for tests: one handshake that reports what the server presented
// (certificate, protocol version, ALPN), and Debian's curl over HTTPS with
// --resolve, so that certificates and HTTP/2 are checked by a client nobody
// here wrote.
import { execFile } from 'node:child_process';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Handshake {
  readonly commonName: string;
  readonly fingerprint: string;
  readonly protocol: string | null;
  readonly alpn: string | false | null;
}

/** One TLS handshake with 127.0.0.1:port (SNI `servername`, none when null); rejects when it fails. */
export function handshake(port: number, servername: string | null, options: ConnectionOptions = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: '127.0.0.1',
      port,
      ...(servername === null ? {} : { servername }),
      rejectUnauthorized: false,
      ALPNProtocols: ['h2', 'http/1.1'],
      ...options,
    }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ commonName: String(cert.subject?.CN ?? ''), fingerprint: cert.fingerprint256, protocol: socket.getProtocol(), alpn: socket.alpnProtocol });
      socket.end();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

export interface CurlResult {
  readonly status: number;
  readonly httpVersion: string;
  readonly body: string;
  /** curl -v output: the handshake and headers. */
  readonly verbose: string;
}

/** Debian's curl against https://host:port/path resolved to 127.0.0.1, trusting `caFile`. */
export async function curl(port: number, host: string, path: string, caFile: string, extra: readonly string[] = []): Promise<CurlResult> {
  const marker = '\n--tug-status--';
  const { stdout, stderr } = await run('curl', [
    '-sS', '-v', '--max-time', '10', '--cacert', caFile,
    '--resolve', `${host}:${port}:127.0.0.1`,
    '-w', `${marker}%{http_code} %{http_version}`,
    ...extra,
    `https://${host}:${port}${path}`,
  ], { timeout: 15_000 });
  const at = stdout.lastIndexOf(marker);
  const [status, httpVersion] = stdout.slice(at + marker.length).trim().split(' ');
  return { status: Number(status), httpVersion, body: stdout.slice(0, at), verbose: stderr };
}
