// A WebSocket echo backend on port 0 (RFC 6455 handshake and framing, written
// out here so the tests depend on no WebSocket library): it answers text
// frames with "<name>: <text>", answers a Close frame with a Close frame, and
// records its sockets so tests can count what stays open.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface WebSocketBackendOptions {
  /** Instead of upgrading, answer with this status (a refused upgrade). */
  readonly refuseWith?: number;
  /** Never answer the upgrade request (a hung backend). */
  readonly silent?: boolean;
}

export class WebSocketBackend {
  readonly name: string;
  readonly server: Server;
  /** Every TCP connection the backend holds. */
  readonly sockets = new Set<Socket>();
  /** Upgraded connections. */
  readonly open = new Set<Duplex>();
  readonly upgrades: IncomingMessage[] = [];
  port = 0;

  constructor(name: string, options: WebSocketBackendOptions = {}) {
    this.name = name;
    this.server = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain', 'content-length': '16' });
      res.end('upgrade required');
    });
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      socket.on('error', () => socket.destroy());
      // node:http sockets are half-open capable: end ours when the peer ends (as WebSocket libraries do).
      socket.on('end', () => socket.end());
      this.upgrades.push(req);
      if (options.silent) return;
      if (options.refuseWith !== undefined) {
        socket.end(`HTTP/1.1 ${options.refuseWith} Refused\r\nContent-Type: text/plain\r\nContent-Length: 7\r\nConnection: close\r\n\r\nrefused`);
        return;
      }
      const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}${GUID}`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Backend: ${this.name}\r\n\r\n`);
      this.open.add(socket);
      socket.once('close', () => this.open.delete(socket));
      let buffered = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        for (;;) {
          const frame = readFrame(buffered);
          if (frame === null) break;
          buffered = buffered.subarray(frame.length);
          if (frame.opcode === 0x1) socket.write(textFrame(`${this.name}: ${frame.payload.toString()}`));
          else if (frame.opcode === 0x8) {
            socket.end(frameOf(0x8, frame.payload.subarray(0, 2)));
            return;
          } else if (frame.opcode === 0x9) socket.write(frameOf(0xa, frame.payload));
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

  /** Sends a Close frame (1000) on every open WebSocket: the app ends them itself. */
  closeAll(): void {
    for (const socket of this.open) socket.end(frameOf(0x8, Buffer.from([0x03, 0xe8])));
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }
}

export function startWebSocketBackend(name: string, options?: WebSocketBackendOptions): Promise<WebSocketBackend> {
  return new WebSocketBackend(name, options).listen();
}

function readFrame(data: Buffer): { opcode: number; payload: Buffer; length: number } | null {
  if (data.length < 2) return null;
  const masked = (data[1] & 0x80) !== 0;
  let length = data[1] & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (data.length < 4) return null;
    length = data.readUInt16BE(2);
    offset = 4;
  } else if (length === 127) {
    if (data.length < 10) return null;
    length = Number(data.readBigUInt64BE(2));
    offset = 10;
  }
  const maskOffset = offset;
  if (masked) offset += 4;
  if (data.length < offset + length) return null;
  const payload = Buffer.from(data.subarray(offset, offset + length));
  if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= data[maskOffset + (i % 4)];
  return { opcode: data[0] & 0x0f, payload, length: offset + length };
}

/** An unmasked (server→client) frame. */
export function frameOf(opcode: number, payload: Buffer): Buffer {
  const head = payload.length < 126 ? Buffer.from([0x80 | opcode, payload.length])
    : payload.length < 65536 ? Buffer.from([0x80 | opcode, 126, payload.length >> 8, payload.length & 0xff])
    : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(payload.length)); return b; })()]);
  return Buffer.concat([head, payload]);
}

export function textFrame(text: string): Buffer {
  return frameOf(0x1, Buffer.from(text));
}
