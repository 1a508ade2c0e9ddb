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
