// An HTTP/2 client for tests: one request on a session (over TLS, the test CA).
import type { ClientHttp2Session, IncomingHttpHeaders } from 'node:http2';

export interface H2Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export function h2Get(session: ClientHttp2Session, authority: string, path = '/', headers: Record<string, string> = {}): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ':path': path, ':method': 'GET', ':authority': authority, ...headers }, { endStream: true });
    const chunks: Buffer[] = [];
    let responseHeaders: IncomingHttpHeaders = {};
    stream.setTimeout(10_000, () => stream.close());
    stream.on('response', (h) => { responseHeaders = h; });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks).toString() }));
    stream.on('error', reject);
  });
}
