// A backend that answers with exactly the bytes a test scripts, for backends
// no HTTP library would let us write (contradicting framing, bytes after a
// bodiless response). It reads request heads off each connection (requests
// without bodies), records them, and hands each to the script with its socket.
import { createServer, type Server, type Socket } from 'node:net';

export interface ScriptedRequest {
  readonly method: string;
  readonly target: string;
  /** The head as received, CRLFCRLF included. */
  readonly head: string;
  /** Which connection (0, 1, ...) and which request on it (0, 1, ...). */
  readonly connection: number;
  readonly index: number;
}

export type Script = (req: ScriptedRequest, socket: Socket) => void;

export class ScriptedBackend {
  readonly server: Server;
  readonly requests: ScriptedRequest[] = [];
  readonly #sockets = new Set<Socket>();
  port = 0;

  constructor(script: Script) {
    let connections = 0;
    this.server = createServer((socket) => {
      const connection = connections++;
      let index = 0;
      let buf = '';
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
      socket.on('error', () => {});
      socket.on('data', (chunk: Buffer) => {
        buf += chunk.toString('latin1');
        for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
          const head = buf.slice(0, end + 4);
          buf = buf.slice(end + 4);
          const [method = '', target = ''] = head.slice(0, head.indexOf('\r\n')).split(' ');
          const req = { method, target, head, connection, index: index++ };
          this.requests.push(req);
          script(req, socket);
        }
      });
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A complete response with a Content-Length body. */
export function response(body: string, status = 200, extra = ''): string {
  return `HTTP/1.1 ${status} X\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}
