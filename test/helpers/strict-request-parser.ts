// The reference parser of the fuzzers: node:http's llhttp server in strict mode
// (the settings node:http's strictest server takes), fed bytes in memory through a
// duplex pair — no socket, no port. It reports every request it parsed, in
// order, with its body, whether it was complete, and the parse error that
// stopped it, if any. The capturing backend runs the same parser over the
// bytes the router forwards.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { duplexPair, type Duplex } from 'node:stream';

export interface StrictRequest {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly rawHeaders: readonly string[];
  /** The body as llhttp decoded it (de-chunked), so far. */
  readonly body: Buffer;
  /** The whole message was parsed (its body ended where its framing said). */
  readonly complete: boolean;
}

export interface StrictParse {
  readonly requests: readonly StrictRequest[];
  /** llhttp's error code (HPE_*) that stopped parsing, or null. */
  readonly error: string | null;
}

/** node:http's settings for a strict server: the oracle's. */
export const STRICT_SERVER_OPTIONS = { insecureHTTPParser: false, requireHostHeader: true, joinDuplicateHeaders: false, maxHeaderSize: 16 * 1024 } as const;

/** A request as it is being parsed: its body grows, `complete` is read at the end. */
export class ParsedRequest {
  readonly req: IncomingMessage;
  readonly #chunks: Buffer[] = [];

  constructor(req: IncomingMessage) {
    this.req = req;
    req.on('data', (c: Buffer) => this.#chunks.push(c));
    req.on('error', () => {});
  }

  snapshot(): StrictRequest {
    const req = this.req;
    return { method: req.method ?? '', url: req.url ?? '', httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, body: Buffer.concat(this.#chunks), complete: req.complete };
  }
}

/**
 * One strict server whose connections are in-memory duplex pairs. `answer` writes the response to
 * each request once its body has ended (requests on a connection are answered in order).
 */
export class StrictServer {
  readonly server: Server;

  /** `requireHost` off: a request without Host is parsed and answered, for the caller to judge. */
  constructor(answer: (req: IncomingMessage, res: ServerResponse) => void, requireHost = true) {
    const handle = (req: IncomingMessage, res: ServerResponse) => {
      const onRequest = (req.socket as Duplex & { [onParsed]?: (req: IncomingMessage) => void })[onParsed];
      onRequest?.(req);
      req.on('end', () => answer(req, res));
    };
    this.server = createServer({ ...STRICT_SERVER_OPTIONS, requireHostHeader: requireHost }, handle);
    // An Expect other than 100-continue is an application's call (node:http answers 417), not a parse error.
    this.server.on('checkExpectation', handle);
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex & { [onError]?: (code: string) => void }) => {
      socket[onError]?.(err.code ?? err.message);
      // Later, so the requests parsed before the error get their body events first.
      setTimeout(() => socket.destroy(), 10).unref();
    });
  }

  /**
   * A new in-memory connection: returns the client's end, and calls `onRequest` for each request
   * as its head is parsed and `onParseError` when parsing stops on an error.
   */
  connect(onRequest: (req: IncomingMessage) => void, onParseError: (code: string) => void): Duplex {
    const [serverSide, clientSide] = duplexPair();
    const tagged = serverSide as Duplex & { [onParsed]?: (req: IncomingMessage) => void; [onError]?: (code: string) => void };
    tagged[onParsed] = onRequest;
    tagged[onError] = onParseError;
    this.server.emit('connection', serverSide);
    return clientSide;
  }
}

const onParsed = Symbol('strict-parser.onParsed');
const onError = Symbol('strict-parser.onError');

let oracle: StrictServer | null = null;

/** Parses `bytes` as one client connection's worth of requests (then end of input). */
export function parseRequestsStrictly(bytes: Buffer, timeoutMs = 2000): Promise<StrictParse> {
  oracle ??= new StrictServer((req, res) => res.end(req.method === 'HEAD' ? undefined : 'ok'));
  return new Promise((resolve) => {
    const parsed: ParsedRequest[] = [];
    let error: string | null = null;
    const client = oracle!.connect((req) => parsed.push(new ParsedRequest(req)), (code) => { error = code; });
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.destroy();
      resolve({ requests: parsed.map((p) => p.snapshot()), error });
    };
    const timer = setTimeout(settle, timeoutMs);
    client.on('data', () => {});
    client.on('error', () => {});
    client.on('close', () => setImmediate(settle));
    client.end(bytes);
  });
}
