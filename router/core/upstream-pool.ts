// Raw keep-alive connections to one backend: idle sockets reused last-in
// first-out, a connect timeout, idle connections closed after
// --upstream-keep-alive (or as soon as the backend closes them), and at most
// --max-connections open at once (requests queue for a free one beyond that).
// Each socket's listeners are attached once and forward to whichever request
// owns the socket at the time.
import { connect, type Socket } from 'node:net';
import type { Backend } from '../table/backend.ts';

/** Connection settings of every pool (--connect-timeout, --upstream-keep-alive, --max-connections). */
export interface UpstreamPoolOptions {
  /** TCP connect timeout, ms. */
  readonly connectTimeout: number;
  /** How long an idle keep-alive connection is kept, ms. */
  readonly keepAliveTimeout: number;
  /** Cap on open connections per backend per worker and listener; 0 = no cap. */
  readonly maxConnections: number;
}

/** What a request using a pooled connection must handle. */
export interface UpstreamUser {
  /** A connection is ready for this request (`conn.reused`: it carried a request before). */
  onUpstreamReady(conn: UpstreamConn): void;
  onUpstreamData(chunk: Buffer): void;
  /** The backend ended its side (FIN). */
  onUpstreamEnd(): void;
  /** Connect failure, reset, timeout, or any socket error. */
  onUpstreamError(err: NodeJS.ErrnoException): void;
  onUpstreamDrain(): void;
}

/** Read buffer size of an upstream connection. */
const READ_BUFFER = 32 * 1024;

export class UpstreamConn {
  socket!: Socket;
  readonly pool: UpstreamPool;
  owner: UpstreamUser | null = null;
  /**
   * Reads land in this buffer (net's `onread`: no allocation per read). Whoever keeps bytes of a
   * chunk past onUpstreamData (a client write that did not complete at once) sets `retained`,
   * and the next read goes to a new buffer.
   */
  readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER);
  retained = false;
  reused = false;
  idleSince = 0;
  /** Idle time after which this connection is not reused, ms (the backend may announce a shorter one). */
  maxIdle = Infinity;
  connected = false;
  #dead = false;

  constructor(pool: UpstreamPool) {
    this.pool = pool;
  }

  /** Called once the socket exists (it needs this object's read callbacks first). */
  attach(socket: Socket): void {
    this.socket = socket;
    socket.on('end', () => {
      const owner = this.owner;
      this.kill();
      if (owner !== null) owner.onUpstreamEnd();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const owner = this.owner;
      this.kill();
      if (owner !== null) owner.onUpstreamError(err);
    });
    socket.on('close', () => {
      const owner = this.owner;
      this.kill();
      if (owner !== null) owner.onUpstreamError(socketError('other side closed', 'UND_ERR_SOCKET'));
    });
    socket.on('drain', () => this.owner?.onUpstreamDrain());
  }

  /** net's onread.callback: bytes read into readBuffer. */
  readonly onRead = (nread: number, buf: Uint8Array): boolean => {
    if (this.owner !== null) this.owner.onUpstreamData((buf as Buffer).subarray(0, nread));
    else this.kill(); // unsolicited bytes on an idle connection: it is not in a known state
    return true;
  };

  /** net's onread.buffer: where the next read goes. */
  readonly nextBuffer = (): Buffer => {
    if (this.retained) {
      this.retained = false;
      this.readBuffer = Buffer.allocUnsafeSlow(READ_BUFFER);
    }
    return this.readBuffer;
  };

  get dead(): boolean {
    return this.#dead;
  }

  /** Destroys the socket and forgets it; the owner (if any) is detached first and not told. */
  kill(): void {
    this.owner = null;
    if (this.#dead) return;
    this.#dead = true;
    this.socket.destroy();
    this.pool.forget(this);
  }
}

export function socketError(message: string, code: string): NodeJS.ErrnoException {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.code = code;
  return err;
}

export class UpstreamPool {
  readonly backend: Backend;
  readonly #options: UpstreamPoolOptions;
  readonly #idle: UpstreamConn[] = [];
  readonly #waiting: UpstreamUser[] = [];
  /** Connections open or opening. */
  #open = 0;
  #closed = false;

  constructor(backend: Backend, options: UpstreamPoolOptions) {
    this.backend = backend;
    this.#options = options;
  }

  get open(): number {
    return this.#open;
  }

  /** Hands `user` a connection now or later (onUpstreamReady), or an error (onUpstreamError). */
  acquire(user: UpstreamUser, now: number): void {
    const keepAlive = this.#options.keepAliveTimeout;
    while (this.#idle.length > 0) {
      const conn = this.#idle.pop()!;
      if (now - conn.idleSince >= Math.min(keepAlive, conn.maxIdle)) {
        conn.kill();
        continue;
      }
      conn.owner = user;
      user.onUpstreamReady(conn);
      return;
    }
    const max = this.#options.maxConnections;
    if (max > 0 && this.#open >= max) {
      this.#waiting.push(user);
      return;
    }
    this.#connect(user);
  }

  /** Takes `user` out of the queue (it gave up before getting a connection). */
  cancel(user: UpstreamUser): void {
    const i = this.#waiting.indexOf(user);
    if (i >= 0) this.#waiting.splice(i, 1);
  }

  /** Returns a connection whose exchange completed cleanly. */
  release(conn: UpstreamConn, now: number): void {
    conn.owner = null;
    if (conn.dead) return;
    if (this.#closed) {
      conn.kill();
      return;
    }
    conn.reused = true;
    const next = this.#waiting.shift();
    if (next !== undefined) {
      conn.owner = next;
      next.onUpstreamReady(conn);
      return;
    }
    conn.idleSince = now;
    this.#idle.push(conn);
  }

  /** Called by a connection as it dies. */
  forget(conn: UpstreamConn): void {
    this.#open--;
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    const next = this.#waiting.shift();
    if (next !== undefined && !this.#closed) this.#connect(next);
  }

  /** Closes idle connections past the keep-alive time. */
  sweep(now: number): void {
    const keepAlive = this.#options.keepAliveTimeout;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const conn = this.#idle[i];
      if (now - conn.idleSince >= Math.min(keepAlive, conn.maxIdle)) conn.kill();
    }
  }

  /**
   * Closes the idle connections (the backend was just ejected: a host that vanished leaves them
   * looking open, and a request sent on one would wait for the response timeout).
   */
  dropIdle(): void {
    for (const conn of this.#idle.slice()) conn.kill();
  }

  /** Closes idle connections now; busy ones close when their exchange ends. */
  close(): void {
    this.#closed = true;
    for (const conn of this.#idle.slice()) conn.kill();
    for (const user of this.#waiting.splice(0)) user.onUpstreamError(socketError('pool closed', 'UND_ERR_CLOSED'));
  }

  #connect(user: UpstreamUser): void {
    this.#open++;
    const conn = new UpstreamConn(this);
    const socket = connect({ host: this.backend.host, port: this.backend.port, noDelay: true, onread: { buffer: conn.nextBuffer, callback: conn.onRead } });
    conn.attach(socket);
    conn.owner = user;
    const timer = setTimeout(() => {
      const owner = conn.owner;
      conn.kill();
      owner?.onUpstreamError(socketError('connect timeout', 'UND_ERR_CONNECT_TIMEOUT'));
    }, this.#options.connectTimeout);
    socket.once('connect', () => {
      clearTimeout(timer);
      conn.connected = true;
      const owner = conn.owner;
      if (owner !== null) owner.onUpstreamReady(conn);
      else this.release(conn, Date.now());
    });
    socket.once('close', () => clearTimeout(timer));
  }
}
