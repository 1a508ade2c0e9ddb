// An HTTP/2 client for tests: one request on a session, the whole reply (or its
// raw stream, to read it at the test's own pace).
import type { ClientHttp2Session, ClientHttp2Stream, IncomingHttpHeaders } from 'node:http2';

export interface H2Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** `headers` may hold :method and :authority; a body is sent as it is given (no Content-Length unless set). */
export function h2request(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const stream = h2stream(session, path, headers, body);
    const chunks: Buffer[] = [];
    let responseHeaders: IncomingHttpHeaders = {};
    stream.on('response', (h) => { responseHeaders = h; });
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => resolve({ status: Number(responseHeaders[':status']), headers: responseHeaders, body: Buffer.concat(chunks) }));
    stream.on('error', reject);
  });
}

export function h2stream(session: ClientHttp2Session, path: string, headers: Record<string, string> = {}, body?: Buffer | string): ClientHttp2Stream {
  const stream = session.request({ ':path': path, ':method': body === undefined ? 'GET' : 'POST', ...headers }, { endStream: body === undefined });
  if (body !== undefined) stream.end(body);
  return stream;
}

/** A GET to `authority` on `session`, the body as text. */
export async function h2Get(session: ClientHttp2Session, authority: string, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const reply = await h2request(session, path, { ':authority': authority, ...headers });
  return { ...reply, body: reply.body.toString() };
}
