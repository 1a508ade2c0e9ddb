// The bench's floor contender, `node-min`: a minimal reverse proxy in plain
// Node.js, so that the report separates what Tug's own code costs from what
// Node costs. Per request it does the work every contender does — forward to
// one of the upstreams (round robin) over keep-alive raw sockets, add
// X-Forwarded-For, X-Forwarded-Proto and X-Request-Id, pass the response back
// with its framing (Content-Length, chunked, or until close) — and nothing
// more: no routing, no strictness beyond keeping the framing right for the
// bench's traffic (HTTP/1.1 clients, requests without a body, one at a time per
// HTTP/1.1 connection). It is a measuring stick, never a product.
//
//   node bench/minimal-proxy.ts --http HOST:PORT --upstreams HOST:PORT,HOST:PORT --workers N
//                               [--https HOST:PORT --cert FILE --key FILE]
//
// Workers bind the ports themselves (SO_REUSEPORT), as Tug's do. HTTPS: the same
// TLS 1.2/1.3 policy as the other contenders, h2 or http/1.1 by ALPN on
// node:http2's secure server (the TLS listener Tug uses), session tickets with
// keys the primary gives every worker; HTTP/2 streams through the core
// `stream` API into the same upstream pools.
import cluster from 'node:cluster';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { constants, createSecureServer, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { connect, createServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    http: { type: 'string' }, https: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' },
    upstreams: { type: 'string' }, workers: { type: 'string', default: '2' },
  },
});
const address = (value: string) => {
  const at = value.lastIndexOf(':');
  return { host: value.slice(0, at) || '127.0.0.1', port: Number(value.slice(at + 1)) };
};

/** Upstream response framing. */
const BODYLESS = 0;
const LENGTH = 1;
const CHUNKED = 2;
const UNTIL_CLOSE = 3;
/**
 * Upstream reads land in one buffer of this size per connection, as in Tug's pool. With Node's own
 * 64 KiB, a 1 MiB response cost ~1.4× the CPU (bench/cpu-per-request.ts; the difference in system
 * time: each 64 KiB write fills the client socket past its 64 KiB high-water mark, so the upstream
 * pauses and resumes at every read).
 */
const READ_BUFFER = 32 * 1024;
/** A response head and first body bytes up to this size leave in one buffer, one write (Tug's threshold). */
const COALESCE_MAX = 4095;
const CRLF = Buffer.from('\r\n');
/** A head longer than this is refused (client) or treated as a broken upstream. */
const MAX_HEAD = 64 * 1024;
/** Hop-by-hop headers of an upstream response (http2 refuses them; HTTP/1.1 gets its own framing). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

/** Where an upstream response goes: an HTTP/1.1 client connection or an HTTP/2 stream. */
interface Sink {
  upstream: UpstreamConnection | null;
  readonly method: string;
  head(status: number, statusLine: string, headers: string[], framing: number): void;
  /** false: the client is not keeping up (the upstream pauses until the sink's drain). `last`: end() follows at once. */
  data(chunk: Buffer, last: boolean): boolean;
  end(): void;
  /** After each upstream read: write what head() and data() gathered; true if bytes of the read are still held. */
  flush(): boolean;
  /** The upstream failed: 502 when nothing was answered yet, else the client's connection or stream is cut. */
  fail(): void;
}

/** Keep-alive raw connections to one upstream, idle ones reused last in, first out. */
class UpstreamPool {
  readonly host: string;
  readonly port: number;
  readonly idle: UpstreamConnection[] = [];
  constructor(host: string, port: number) {
    this.host = host;
    this.port = port;
  }
  send(head: string, sink: Sink): void {
    const conn = this.idle.pop() ?? new UpstreamConnection(this);
    conn.sink = sink;
    sink.upstream = conn;
    conn.socket.write(head, 'latin1');
  }
}

class UpstreamConnection {
  readonly socket: Socket;
  readonly #pool: UpstreamPool;
  sink: Sink | null = null;
  #partialHead: Buffer | null = null;
  #framing = -1; // -1: reading the head
  #remaining = 0;
  #reusable = true;
  #chunks = new ChunkedScanner();
  #buffer = Buffer.allocUnsafeSlow(READ_BUFFER);
  /** A sink still holds bytes of #buffer (a write not yet done): the next read needs a new one. */
  #retained = false;
  #paused = false;

  constructor(pool: UpstreamPool) {
    this.#pool = pool;
    // net's onread: no allocation per read, and pause() stops reading at once (as Tug's pool does).
    const buffer = () => {
      if (this.#retained) {
        this.#retained = false;
        this.#buffer = Buffer.allocUnsafeSlow(READ_BUFFER);
      }
      return this.#buffer;
    };
    const callback = (length: number, read: Uint8Array) => {
      this.#read((read as Buffer).subarray(0, length));
      return true;
    };
    this.socket = connect({ host: pool.host, port: pool.port, noDelay: true, onread: { buffer, callback } });
    this.socket.on('error', () => {}); // 'close' follows
    this.socket.on('close', () => {
      const i = pool.idle.indexOf(this);
      if (i >= 0) pool.idle.splice(i, 1);
      const sink = this.sink;
      this.sink = null;
      if (sink !== null && this.#framing === UNTIL_CLOSE) sink.end();
      else sink?.fail();
      sink?.flush();
    });
  }

  #pause(): void {
    this.#paused = true;
    this.socket.pause();
  }

  /** The sink drained. */
  resume(): void {
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  /** The client went away mid-response: this connection is in an unknown state. */
  abandon(): void {
    this.sink = null;
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    const sink = this.sink;
    if (sink === null) return void this.socket.destroy(); // bytes nobody asked for
    let body = chunk;
    if (this.#framing < 0) {
      const buf = this.#partialHead === null ? chunk : Buffer.concat([this.#partialHead, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        this.#partialHead = buf;
        this.#retained = true;
        if (buf.length > MAX_HEAD) this.socket.destroy();
        return;
      }
      this.#partialHead = null;
      body = buf.subarray(end + 4);
      this.#readHead(sink, buf.toString('latin1', 0, end));
    }
    let used = this.#framing === BODYLESS ? 0 : body.length;
    if (this.#framing === LENGTH) {
      used = Math.min(this.#remaining, body.length);
      this.#remaining -= used;
      if (used > 0 && !sink.data(body.subarray(0, used), this.#remaining === 0)) this.#pause();
    } else if (this.#framing === CHUNKED) {
      used = this.#chunks.scan(body, (payload) => sink.data(payload, false) || (this.#pause(), false));
      if (used === -2) return void this.socket.destroy();
    } else if (this.#framing === UNTIL_CLOSE && body.length > 0 && !sink.data(body, false)) this.#pause();
    const done = this.#framing === BODYLESS || (this.#framing === LENGTH && this.#remaining === 0) || (this.#framing === CHUNKED && used >= 0);
    if (done) {
      this.sink = null;
      this.#framing = -1;
      if (used < body.length || !this.#reusable) this.socket.destroy();
      else {
        // Paused for a slow client, its response now complete: the next one must be read.
        this.resume();
        this.#pool.idle.push(this);
      }
      sink.end();
    }
    if (sink.flush()) this.#retained = true;
  }

  #readHead(sink: Sink, text: string): void {
    const lineEnd = text.indexOf('\r\n');
    const statusLine = lineEnd < 0 ? text : text.slice(0, lineEnd);
    const status = Number(statusLine.slice(9, 12));
    const headers: string[] = [];
    let length = -1;
    let chunked = false;
    this.#reusable = statusLine.startsWith('HTTP/1.1');
    if (lineEnd >= 0) {
      for (const line of text.slice(lineEnd + 2).split('\r\n')) {
        const colon = line.indexOf(':');
        const name = line.slice(0, colon).toLowerCase();
        const value = line.slice(colon + 1).trim();
        if (name === 'content-length') length = Number(value);
        else if (name === 'transfer-encoding') chunked = value.toLowerCase().endsWith('chunked');
        else if (name === 'connection' && value.toLowerCase().includes('close')) this.#reusable = false;
        if (!HOP_BY_HOP.has(name)) headers.push(line);
      }
    }
    if (sink.method === 'HEAD' || status === 204 || status === 304) this.#framing = BODYLESS;
    else if (chunked) {
      this.#framing = CHUNKED;
      this.#chunks = new ChunkedScanner();
    } else if (length >= 0) {
      this.#framing = LENGTH;
      this.#remaining = length;
    } else {
      this.#framing = UNTIL_CLOSE;
      this.#reusable = false;
    }
    sink.head(status, statusLine, headers, this.#framing);
  }
}

/** Finds where a chunked body ends, handing each piece of payload to `emit`. */
class ChunkedScanner {
  #state: 'size' | 'extension' | 'data' | 'data-end' | 'trailer' = 'size';
  #size = 0;
  #lineLength = 0;

  /** The index just past the body's end in `b`, -1 when the body goes on, -2 when it is malformed. */
  scan(b: Buffer, emit: (payload: Buffer) => boolean): number {
    for (let i = 0; i < b.length; i++) {
      const c = b[i];
      switch (this.#state) {
        case 'data': {
          const take = Math.min(this.#size, b.length - i);
          emit(b.subarray(i, i + take));
          this.#size -= take;
          i += take - 1;
          if (this.#size === 0) this.#state = 'data-end';
          break;
        }
        case 'data-end':
          if (c === 10) this.#state = 'size';
          else if (c !== 13) return -2;
          break;
        case 'trailer':
          if (c === 10) {
            if (this.#lineLength === 0) return i + 1;
            this.#lineLength = 0;
          } else if (c !== 13) this.#lineLength++;
          break;
        default: { // size line, then its extensions until the line ends
          const digit = c >= 48 && c <= 57 ? c - 48 : (c | 32) >= 97 && (c | 32) <= 102 ? (c | 32) - 87 : -1;
          if (c === 10) {
            this.#state = this.#size === 0 ? 'trailer' : 'data';
            this.#lineLength = 0;
          } else if (this.#state === 'size' && digit >= 0 && this.#size < 2 ** 40) this.#size = this.#size * 16 + digit;
          else if (c === 59 /* ; */) this.#state = 'extension';
          else if (this.#state === 'size' && c !== 13) return -2;
        }
      }
    }
    return -1;
  }
}

let next = 0;
function pick(pools: readonly UpstreamPool[]): UpstreamPool {
  next = (next + 1) % pools.length;
  return pools[next];
}

/** An HTTP/1.1 client connection, plain or over TLS: one request at a time. */
class ClientConnection implements Sink {
  upstream: UpstreamConnection | null = null;
  method = '';
  readonly #socket: Socket;
  readonly #proto: string;
  readonly #pools: readonly UpstreamPool[];
  #buffered: Buffer | null = null;
  #close = false;
  #chunked = false;
  #answered = false;
  #pendingHead: string | null = null;

  constructor(socket: Socket, proto: string, pools: readonly UpstreamPool[]) {
    this.#socket = socket;
    this.#proto = proto;
    this.#pools = pools;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.#buffered = this.#buffered === null ? chunk : Buffer.concat([this.#buffered, chunk]);
      if (this.upstream === null) this.#next();
    });
    socket.on('drain', () => this.upstream?.resume());
    socket.on('error', () => {});
    socket.on('close', () => this.upstream?.abandon());
  }

  #next(): void {
    const buf = this.#buffered;
    if (buf === null || this.#close) return;
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return void (buf.length > MAX_HEAD && this.#refuse(431, 'Request Header Fields Too Large'));
    this.#buffered = end + 4 < buf.length ? buf.subarray(end + 4) : null;
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const requestLine = lines[0];
    if (!requestLine.endsWith(' HTTP/1.1')) return this.#refuse(505, 'HTTP Version Not Supported');
    this.method = requestLine.slice(0, requestLine.indexOf(' '));
    let head = `${requestLine}\r\n`;
    let forwardedFor = '';
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i];
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'connection') this.#close ||= value.toLowerCase().includes('close');
      else if ((name === 'content-length' && value !== '0') || name === 'transfer-encoding') return this.#refuse(501, 'Not Implemented');
      else if (name === 'x-forwarded-for') forwardedFor = `${value}, `;
      else if (name !== 'keep-alive' && name !== 'x-forwarded-proto' && name !== 'x-request-id') head += `${line}\r\n`;
    }
    head += `x-forwarded-for: ${forwardedFor}${this.#socket.remoteAddress}\r\nx-forwarded-proto: ${this.#proto}\r\nx-request-id: ${randomUUID()}\r\n\r\n`;
    this.#answered = false;
    pick(this.#pools).send(head, this);
  }

  #refuse(status: number, text: string): void {
    this.#close = true;
    this.#socket.end(`HTTP/1.1 ${status} ${text}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n`);
  }

  head(_status: number, statusLine: string, headers: string[], framing: number): void {
    this.#answered = true;
    this.#chunked = framing === CHUNKED;
    if (framing === UNTIL_CLOSE) this.#close = true;
    let head = `${statusLine}\r\n`;
    for (const line of headers) head += `${line}\r\n`;
    // Written with the first body bytes (data), or after the read that brought it (flush, end).
    this.#pendingHead = `${head}${this.#chunked ? 'transfer-encoding: chunked\r\n' : ''}${this.#close ? 'connection: close\r\n' : ''}\r\n`;
  }

  data(chunk: Buffer, _last: boolean): boolean {
    const head = this.#pendingHead ?? '';
    this.#pendingHead = null;
    if (this.#chunked) return this.#socket.write(Buffer.concat([Buffer.from(`${head}${chunk.length.toString(16)}\r\n`, 'latin1'), chunk, CRLF]));
    if (head.length + chunk.length <= COALESCE_MAX) {
      // Small, as Tug does: one copy into Buffer's pool and one write (a head is latin1: one byte per character).
      const out = Buffer.allocUnsafe(head.length + chunk.length);
      out.write(head, 0, 'latin1');
      chunk.copy(out, head.length);
      return this.#socket.write(out);
    }
    if (head.length === 0) return this.#socket.write(chunk);
    this.#socket.cork();
    this.#socket.write(head, 'latin1');
    const ok = this.#socket.write(chunk);
    this.#socket.uncork();
    return ok;
  }

  end(): void {
    this.upstream = null;
    this.flush();
    if (this.#chunked) this.#socket.write('0\r\n\r\n', 'latin1');
    if (this.#close) this.#socket.end();
    else if (this.#buffered !== null) this.#next();
  }

  flush(): boolean {
    if (this.#pendingHead !== null) {
      this.#socket.write(this.#pendingHead, 'latin1');
      this.#pendingHead = null;
    }
    return this.#socket.writableLength > 0;
  }

  fail(): void {
    this.upstream = null;
    if (this.#answered) this.#socket.destroy();
    else this.#refuse(502, 'Bad Gateway');
  }
}

/** One HTTP/2 stream, forwarded as an HTTP/1.1 request. */
class StreamExchange implements Sink {
  upstream: UpstreamConnection | null = null;
  readonly method: string;
  readonly #stream: ServerHttp2Stream;
  #holding = false;

  constructor(stream: ServerHttp2Stream, method: string) {
    this.#stream = stream;
    this.method = method;
    stream.on('drain', () => this.upstream?.resume());
    stream.on('error', () => {});
    stream.on('close', () => this.upstream?.abandon());
  }

  head(status: number, _statusLine: string, headers: string[], framing: number): void {
    const out: OutgoingHttpHeaders = { ':status': status };
    for (const line of headers) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      const previous = out[name];
      out[name] = previous === undefined ? value : [previous, value].flat().map(String);
    }
    this.#stream.respond(out, { endStream: framing === BODYLESS });
  }

  data(chunk: Buffer, last: boolean): boolean {
    // nghttp2 takes the bytes later, when it frames them.
    this.#holding = true;
    // The last bytes go with END_STREAM: one DATA frame, not a second empty one.
    if (!last) return this.#stream.write(chunk);
    this.#stream.end(chunk);
    return true;
  }

  end(): void {
    this.upstream = null;
    if (!this.#stream.writableEnded) this.#stream.end();
  }

  flush(): boolean {
    const holding = this.#holding;
    this.#holding = false;
    return holding;
  }

  fail(): void {
    this.upstream = null;
    if (this.#stream.destroyed) return;
    if (this.#stream.headersSent) this.#stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    else this.#stream.respond({ ':status': 502 }, { endStream: true });
  }
}

function onStream(stream: ServerHttp2Stream, flags: number, raw: string[], pools: readonly UpstreamPool[]): void {
  let method = 'GET';
  let path = '/';
  let host = '';
  let forwardedFor = '';
  let cookie = '';
  let headers = '';
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    if (name === ':method') method = value;
    else if (name === ':path') path = value;
    else if (name === ':authority' || name === 'host') host = value;
    else if (name === 'cookie') cookie = cookie === '' ? value : `${cookie}; ${value}`;
    else if (name === 'x-forwarded-for') forwardedFor = `${value}, `;
    else if (name[0] !== ':' && name !== 'te' && name !== 'x-forwarded-proto' && name !== 'x-request-id') headers += `${name}: ${value}\r\n`;
  }
  if ((flags & constants.NGHTTP2_FLAG_END_STREAM) === 0) return void stream.respond({ ':status': 501 }, { endStream: true });
  const remote = stream.session?.socket?.remoteAddress ?? '';
  pick(pools).send(
    `${method} ${path} HTTP/1.1\r\nhost: ${host}\r\n${headers}${cookie === '' ? '' : `cookie: ${cookie}\r\n`}`
      + `x-forwarded-for: ${forwardedFor}${remote}\r\nx-forwarded-proto: https\r\nx-request-id: ${randomUUID()}\r\n\r\n`,
    new StreamExchange(stream, method),
  );
}

function startWorker(): void {
  const pools = args.upstreams!.split(',').map((u) => {
    const { host, port } = address(u);
    return new UpstreamPool(host, port);
  });
  const http = createServer((socket) => new ClientConnection(socket, 'http', pools));
  http.listen({ ...address(args.http!), reusePort: true, exclusive: true });
  if (args.https === undefined) return;
  const tls = createSecureServer({
    cert: readFileSync(args.cert!), key: readFileSync(args.key!),
    minVersion: 'TLSv1.2', maxVersion: 'TLSv1.3', honorCipherOrder: false,
    ciphers: 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305',
    allowHTTP1: true,
    settings: { maxConcurrentStreams: 128, enablePush: false },
  });
  tls.setTicketKeys(Buffer.from(process.env.NODE_MIN_TICKET_KEYS!, 'base64'));
  tls.on('stream', (stream: ServerHttp2Stream, _headers: unknown, flags: number, raw: string[]) => onStream(stream, flags, raw, pools));
  // node:http2 serves a handshaken connection from its 'secureConnection' listener: h2 stays with
  // it, HTTP/1.1 comes here (as Tug does).
  const [http2Listener] = tls.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
  tls.removeAllListeners('secureConnection');
  tls.on('secureConnection', (socket: TLSSocket) => {
    if (socket.alpnProtocol === 'h2') http2Listener.call(tls, socket);
    else new ClientConnection(socket, 'https', pools);
  });
  tls.listen({ ...address(args.https), reusePort: true, exclusive: true });
}

if (cluster.isPrimary) {
  // One ticket key set for every worker: a ticket one issues resumes on another.
  const env = { NODE_MIN_TICKET_KEYS: randomBytes(48).toString('base64') };
  const workers = [...Array(Number(args.workers))].map(() => cluster.fork(env));
  let alive = workers.length;
  let stopping = false;
  let failed = false;
  const stop = () => {
    stopping = true;
    for (const worker of workers) worker.process.kill('SIGTERM');
  };
  // A worker that dies takes the whole proxy down: the bench must not measure it a worker short.
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`node-min: worker ${worker.process.pid} exited (${signal ?? code})`);
      failed = true;
      stop();
    }
    if (--alive === 0) process.exit(failed ? 1 : 0);
  });
  process.on('SIGTERM', stop);
} else {
  startWorker();
  // An orderly exit, so that `node --cpu-prof bench/minimal-proxy.ts …` writes each worker's profile.
  process.on('SIGTERM', () => process.exit(0));
}
