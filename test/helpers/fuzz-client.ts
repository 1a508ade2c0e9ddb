// The client side of a fuzz case: one raw connection to the router that sends
// bytes (whole, or in pieces) and collects what comes back until the router
// closes, a condition says the exchange is over, or nothing moves for a while.
import { connect } from 'node:net';

export interface RawReply {
  readonly bytes: Buffer;
  /** The router ended or reset the connection. */
  readonly closed: boolean;
}

export interface RawExchangeOptions {
  /** Where to cut `bytes` into separate writes (sorted offsets). */
  readonly cuts?: readonly number[];
  /** Bytes to send once `after(received)` holds (a request sent after the previous response, on the same connection). */
  readonly followUp?: { readonly after: (received: Buffer) => boolean; readonly bytes: Buffer };
  /** Whether what arrived so far is all that is expected (checked on each read). */
  readonly done?: (received: Buffer) => boolean;
  /** Last activity elsewhere (the backend), so a busy backend is not mistaken for silence. */
  readonly activity?: () => number;
  /** Silence that ends the exchange, ms. */
  readonly quietMs?: number;
  readonly timeoutMs?: number;
}

export function sendRaw(port: number, bytes: Buffer, options: RawExchangeOptions = {}): Promise<RawReply> {
  const { cuts = [], done, followUp, activity = () => 0, quietMs = 100, timeoutMs = 3000 } = options;
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true });
    const chunks: Buffer[] = [];
    let closed = false;
    let finished = false;
    let last = Date.now();
    const started = last;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(ticker);
      socket.destroy();
      resolve({ bytes: Buffer.concat(chunks), closed });
    };
    const ticker = setInterval(() => {
      const now = Date.now();
      if (now - Math.max(last, activity()) >= quietMs || now - started >= timeoutMs) finish();
    }, Math.max(5, quietMs >> 2));
    let followed = followUp === undefined;
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      last = Date.now();
      const received = Buffer.concat(chunks);
      if (!followed && followUp!.after(received)) {
        followed = true;
        socket.write(followUp!.bytes);
        return;
      }
      if (followed && done?.(received)) {
        // Settle briefly: anything the router should not have sent would show up now.
        setTimeout(finish, 10);
      }
    });
    socket.on('end', () => { closed = true; finish(); });
    socket.on('error', () => { closed = true; finish(); });
    socket.on('close', () => { closed = true; finish(); });
    const pieces: Buffer[] = [];
    let from = 0;
    for (const cut of [...cuts, bytes.length]) {
      if (cut > from && cut <= bytes.length) {
        pieces.push(bytes.subarray(from, cut));
        from = cut;
      }
    }
    const writeNext = () => {
      const piece = pieces.shift();
      if (piece === undefined || socket.destroyed) return;
      socket.write(piece);
      if (pieces.length > 0) setTimeout(writeNext, 1);
    };
    socket.once('connect', writeNext);
  });
}
