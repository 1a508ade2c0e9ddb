// A backend that misbehaves on cue: raw TCP, it reads each request head the
// router forwards (bodiless requests only) and plays the script registered for
// its target — bytes to write, pauses, a FIN or a reset — whatever the bytes
// say about framing. Requests on one connection are answered in order, each
// after the previous script has finished, as a real HTTP/1.1 server would.
// The response fuzzer and the malicious-backend battery use it.
import { createServer, type Server, type Socket } from 'node:net';

export type Step =
  | { readonly write: string | Buffer }
  | { readonly pause: number }
  /** Half-close (FIN) after what was written. */
  | { readonly end: true }
  /** Reset the connection. */
  | { readonly reset: true };

export interface ReceivedRequest {
  readonly method: string;
  readonly target: string;
  /** The backend connection it came on, from 1. */
  readonly connection: number;
  readonly head: string;
}

/** A plain 200 with a Content-Length body: what unscripted targets get. */
export function plainResponse(body: string, extra = ''): string {
  return `HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body, 'latin1')}\r\n${extra}\r\n${body}`;
}

export class ScriptedBackend {
  readonly #server: Server;
  readonly #scripts = new Map<string, readonly Step[]>();
  readonly #sockets = new Set<Socket>();
  readonly received: ReceivedRequest[] = [];
  #connections = 0;
  /** Scripts being played right now. */
  playing = 0;
  /** Date.now() of the last byte in or out, or connection change. */
  lastActivity = 0;
  port = 0;

  constructor() {
    this.#server = createServer((socket) => this.#accept(socket));
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** How many connections the router has opened to it so far. */
  get connections(): number {
    return this.#connections;
  }

  /** What requests for `target` get (replaces an earlier script for it). */
  script(target: string, steps: readonly Step[]): void {
    this.#scripts.set(target, steps);
  }

  forget(target: string): void {
    this.#scripts.delete(target);
  }

  #accept(socket: Socket): void {
    const connection = ++this.#connections;
    this.#sockets.add(socket);
    this.lastActivity = Date.now();
    socket.setNoDelay(true);
    let buf = '';
    const queue: ReceivedRequest[] = [];
    let busy = false;
    const next = async () => {
      if (busy) return;
      busy = true;
      while (queue.length > 0 && !socket.destroyed) {
        const req = queue.shift()!;
        this.playing++;
        try {
          await this.#play(socket, this.#scripts.get(req.target) ?? [{ write: plainResponse(`unscripted ${req.target}\n`) }]);
        } finally {
          this.playing--;
          this.lastActivity = Date.now();
        }
      }
      busy = false;
    };
    socket.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now();
      buf += chunk.toString('latin1');
      for (let end = buf.indexOf('\r\n\r\n'); end >= 0; end = buf.indexOf('\r\n\r\n')) {
        const head = buf.slice(0, end + 4);
        buf = buf.slice(end + 4);
        const [method = '', target = ''] = head.slice(0, head.indexOf('\r\n')).split(' ');
        const req = { method, target, connection, head };
        this.received.push(req);
        queue.push(req);
      }
      void next();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.lastActivity = Date.now();
      this.#sockets.delete(socket);
      queue.length = 0;
    });
  }

  async #play(socket: Socket, steps: readonly Step[]): Promise<void> {
    for (const step of steps) {
      if (socket.destroyed) return;
      if ('write' in step) {
        socket.write(typeof step.write === 'string' ? Buffer.from(step.write, 'latin1') : step.write);
        this.lastActivity = Date.now();
      } else if ('pause' in step) {
        await new Promise((resolve) => setTimeout(resolve, step.pause));
      } else if ('end' in step) {
        socket.end();
        return;
      } else {
        socket.resetAndDestroy();
        return;
      }
    }
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
    return this;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      for (const socket of this.#sockets) socket.destroy();
    });
  }
}
