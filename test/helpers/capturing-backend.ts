// A backend that records exactly the bytes it receives on each connection and
// parses them with the strict reference parser (strict-request-parser.ts), as
// the router's upstream would: the request fuzzer checks that what the router
// forwards parses as exactly the requests it accepted. Each complete request is
// answered with a small, well-framed response whose `x-capture` header names
// it, so the client side can tell which backend request a response answers.
import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { ParsedRequest, StrictServer, type StrictRequest } from './strict-request-parser.ts';

export const CAPTURE_HEADER = 'x-capture';

export interface CapturedRequest extends StrictRequest {
  /** Its number at this backend, from 1 (the x-capture of the response it got). */
  readonly id: number;
  /** The backend connection it came on. */
  readonly connection: number;
}

export interface CapturedConnection {
  readonly id: number;
  /** Every byte received, in order. */
  bytes(): Buffer;
  requests(): CapturedRequest[];
  /** The parse error that stopped reading this connection, or null. */
  readonly parseError: string | null;
  readonly closed: boolean;
}

class Connection implements CapturedConnection {
  readonly id: number;
  readonly #chunks: Buffer[] = [];
  readonly #requests: { id: number; parsed: ParsedRequest }[] = [];
  parseError: string | null = null;
  closed = false;

  constructor(id: number) {
    this.id = id;
  }

  received(chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  parsed(id: number, req: IncomingMessage): ParsedRequest {
    const parsed = new ParsedRequest(req);
    this.#requests.push({ id, parsed });
    return parsed;
  }

  bytes(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  requests(): CapturedRequest[] {
    return this.#requests.map(({ id, parsed }) => ({ ...parsed.snapshot(), id, connection: this.id }));
  }
}

export class CapturingBackend {
  readonly #server: Server;
  readonly #parser: StrictServer;
  readonly #sockets = new Set<Socket>();
  readonly connections: CapturedConnection[] = [];
  /** Every parse error, in order: what the router forwarded that a strict server refuses. */
  readonly parseErrors: { connection: number; code: string; bytes: Buffer }[] = [];
  #requests = 0;
  readonly #all: { id: number; connection: number; parsed: ParsedRequest }[] = [];
  /** Date.now() of the last byte received or connection change. */
  lastActivity = 0;
  port = 0;

  constructor() {
    this.#parser = new StrictServer((req, res) => {
      const id = (req as IncomingMessage & { [captureId]?: number })[captureId] ?? 0;
      const body = `ok ${id}\n`;
      res.writeHead(200, { [CAPTURE_HEADER]: String(id), 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      // Host is not required here: node:http would answer 400 itself, unmarked; the fuzzer checks Host.
    }, false);
    this.#server = createServer((socket) => this.#accept(socket));
  }

  /** How many requests have reached this backend (ids go from 1 to this). */
  get requestCount(): number {
    return this.#requests;
  }

  /** Requests with an id above `after`, with their bodies so far. */
  requestsAfter(after: number): CapturedRequest[] {
    return this.#all.slice(after).map(({ id, connection, parsed }) => ({ ...parsed.snapshot(), id, connection }));
  }

  /** The request with this id, or undefined. */
  request(id: number): CapturedRequest | undefined {
    const entry = this.#all[id - 1];
    return entry === undefined ? undefined : { ...entry.parsed.snapshot(), id, connection: entry.connection };
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  #accept(socket: Socket): void {
    this.#sockets.add(socket);
    this.lastActivity = Date.now();
    const conn = new Connection(this.connections.length + 1);
    this.connections.push(conn);
    const parser = this.#parser.connect((req) => {
      const id = ++this.#requests;
      (req as IncomingMessage & { [captureId]?: number })[captureId] = id;
      this.#all.push({ id, connection: conn.id, parsed: conn.parsed(id, req) });
    }, (code) => {
      conn.parseError = code;
      this.parseErrors.push({ connection: conn.id, code, bytes: conn.bytes() });
    });
    parser.on('data', (out: Buffer) => { if (!socket.destroyed) socket.write(out); });
    parser.on('end', () => socket.end());
    parser.on('close', () => socket.destroy());
    parser.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.lastActivity = Date.now();
      conn.received(chunk);
      parser.write(chunk);
    });
    socket.on('end', () => parser.end());
    socket.on('error', () => {});
    socket.on('close', () => {
      this.lastActivity = Date.now();
      conn.closed = true;
      this.#sockets.delete(socket);
      parser.destroy();
    });
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

const captureId = Symbol('capturing-backend.id');
