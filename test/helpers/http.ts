// Small HTTP clients for tests: one request on a fresh connection (so that
// keep-alive pooling in the test never hides a router behaviour), and raw bytes
// over TCP for requests no well-behaved client would send.
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export function get(port: number, host: string, path = '/', options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeout?: number; address?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: options.address ?? '127.0.0.1',
      port,
      path,
      method: options.method ?? 'GET',
      headers: { host, ...options.headers },
      agent: false,
      timeout: options.timeout ?? 10_000,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends raw bytes, returns everything the server wrote until it closed (or `timeout` ms passed). */
export function rawExchange(port: number, bytes: string | Buffer, timeout = 3000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => socket.destroy(), timeout);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { closed = true; });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') closed = true;
      else reject(err);
    });
    socket.write(bytes);
  });
}

export interface RawResponse {
  readonly status: number;
  /** Header names lowercased; repeated ones joined with ', '. */
  readonly headers: Record<string, string>;
  readonly body: string;
}

/**
 * Splits what a server wrote on one connection into responses, strictly by their framing
 * (Content-Length, chunked, or none for 1xx/204/304 and answers to HEAD: `methods` in request order).
 * `rest`: bytes after the last complete response; `error`: why the stream stopped parsing.
 */
export function parseResponses(text: string, methods: readonly string[] = []): { responses: RawResponse[]; rest: string; error: string | null } {
  const responses: RawResponse[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end < 0) return { responses, rest: text.slice(at), error: 'incomplete head' };
    const lines = text.slice(at, end).split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0]);
    if (status === null) return { responses, rest: text.slice(at), error: `not a status line: ${JSON.stringify(lines[0])}` };
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const code = Number(status[1]);
    at = end + 4;
    const method = code >= 200 ? methods[responses.filter((r) => r.status >= 200).length] : undefined;
    let body = '';
    if (code < 200 || code === 204 || code === 304 || method === 'HEAD') {
      body = '';
    } else if (headers['transfer-encoding'] !== undefined) {
      if (headers['content-length'] !== undefined) return { responses, rest: text.slice(at), error: 'both Content-Length and Transfer-Encoding' };
      for (;;) {
        const lineEnd = text.indexOf('\r\n', at);
        if (lineEnd < 0) return { responses, rest: text.slice(at), error: 'incomplete chunk' };
        const size = Number.parseInt(text.slice(at, lineEnd), 16);
        if (!Number.isFinite(size)) return { responses, rest: text.slice(at), error: 'invalid chunk size' };
        at = lineEnd + 2;
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n\r\n', at - 2);
          if (trailerEnd < 0) return { responses, rest: text.slice(at), error: 'incomplete trailers' };
          at = trailerEnd + 4;
          break;
        }
        body += text.slice(at, at + size);
        at += size + 2;
      }
    } else if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (!/^\d+$/.test(headers['content-length']) || at + length > text.length) return { responses, rest: text.slice(at), error: 'invalid or incomplete Content-Length body' };
      body = text.slice(at, at + length);
      at += length;
    } else {
      // Until close: the rest is this body, and no response may follow it.
      body = text.slice(at);
      at = text.length;
      responses.push({ status: code, headers, body });
      return { responses, rest: '', error: headers.connection === 'close' ? null : 'unframed body on a connection left open' };
    }
    responses.push({ status: code, headers, body });
  }
  return { responses, rest: '', error: null };
}
