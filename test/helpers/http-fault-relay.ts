// An HTTP relay the test controls, between a client and a real server (the
// pull-through cache and its upstream registry): it passes requests through,
// or fails them the way an upstream fails — connections reset (down), 429 Too
// Many Requests with Retry-After (rate-limited), or a blob body with one byte
// flipped (corrupt). It counts what it relayed.
import { createServer, request, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { freePort } from './ports.ts';

export type RelayMode = 'pass' | 'down' | 'rate-limited' | 'corrupt-blobs';

export class HttpFaultRelay {
  readonly port: number;
  mode: RelayMode = 'pass';
  /** Requests seen (whatever the mode), as `METHOD path`. */
  readonly requests: string[] = [];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();

  private constructor(port: number, targetPort: number) {
    this.port = port;
    this.#server = createServer((req, res) => {
      this.requests.push(`${req.method} ${req.url}`);
      if (this.mode === 'down') {
        req.socket.destroy();
        return;
      }
      if (this.mode === 'rate-limited') {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '30' });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS","message":"rate limited"}]}');
        return;
      }
      const corrupt = this.mode === 'corrupt-blobs' && req.method === 'GET' && /\/blobs\/sha256:/.test(req.url ?? '');
      const upstream = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        let flipped = false;
        answer.on('data', (chunk: Buffer) => {
          if (corrupt && !flipped && chunk.length > 0) {
            chunk = Buffer.from(chunk);
            chunk[0] ^= 0xff;
            flipped = true;
          }
          res.write(chunk);
        });
        answer.on('end', () => res.end());
        answer.on('error', () => res.destroy());
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    this.#server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(targetPort: number): Promise<HttpFaultRelay> {
    const relay = new HttpFaultRelay(await freePort(), targetPort);
    await new Promise<void>((resolve, reject) => {
      relay.#server.once('error', reject);
      relay.#server.listen(relay.port, '127.0.0.1', () => resolve());
    });
    return relay;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
