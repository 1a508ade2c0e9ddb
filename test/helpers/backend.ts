// Real HTTP backends on port 0 that record what reached them.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly rawHeaders: string[];
  readonly bodyBytes: number;
}

export type BackendHandler = (req: IncomingMessage, res: ServerResponse, backend: TestBackend) => void;

export class TestBackend {
  readonly name: string;
  readonly server: Server;
  readonly requests: SeenRequest[] = [];
  readonly sockets = new Set<Socket>();
  port = 0;

  constructor(name: string, handler?: BackendHandler) {
    this.name = name;
    this.server = createServer((req, res) => {
      let bodyBytes = 0;
      const record = () => this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes });
      if (handler) {
        record();
        handler(req, res, this);
        return;
      }
      req.on('data', (chunk: Buffer) => { bodyBytes += chunk.length; });
      req.on('end', () => {
        record();
        const body = `${this.name}\n`;
        res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': this.name, 'content-length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      });
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  /** Closes the listener and every connection (the backend is gone). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const socket of this.sockets) socket.destroy();
    });
  }
}

export async function startBackend(name: string, handler?: BackendHandler): Promise<TestBackend> {
  return new TestBackend(name, handler).listen();
}
