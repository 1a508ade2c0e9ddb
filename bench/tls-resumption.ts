// Checks that a TLS scenario measures resumed handshakes, not full ones: a
// relay in front of a contender's HTTPS port reads each connection's
// ClientHello and ServerHello (plaintext in TLS 1.2 and 1.3) and counts the
// handshakes the server resumed, while the same load tool with the same
// settings runs through it for a moment. The relay is never in the measured
// path: it only checks what the tool and the contender achieve together.
//
// Resumed means: TLS 1.3, the ServerHello carries the pre_shared_key extension
// (the server accepted a ticket); TLS 1.2, the server echoes the client's
// non-empty session id (RFC 5077 §3.4: that is how a server says it accepted
// the ticket, or the cached session the id names).
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { HOST, type Contender } from './contenders.ts';
import type { ThroughputScenario } from './throughput.ts';
import { runWrk } from './wrk.ts';

export interface ResumptionCount {
  readonly handshakes: number;
  readonly resumed: number;
  /** resumed / handshakes (0..1). */
  readonly rate: number;
  readonly protocols: readonly string[];
}

/** wrk as `scenario` runs it (c=10, 2 s), through a relay in front of each contender's HTTPS port. */
export async function measureResumption(contenders: readonly Contender[], scenario: ThroughputScenario, progress: (line: string) => void): Promise<Record<string, ResumptionCount>> {
  const counts: Record<string, ResumptionCount> = {};
  for (const contender of contenders) {
    const tap = await ResumptionTap.start(contender.tlsPort!);
    try {
      await runWrk({ url: `https://127.0.0.1:${tap.port}${scenario.path}`, connections: 10, seconds: 2, headers: { Host: HOST, ...scenario.headers } });
    } finally {
      await tap.close();
    }
    const count = counts[contender.name] = tap.count();
    progress(`  ${contender.name}: ${count.resumed} of ${count.handshakes} handshakes resumed (${count.protocols.join(', ')})`);
  }
  return counts;
}

/** The report's note: the rates, and why a Node contender's (tug, tug@N, node-min) is what it is when it is about half. */
export function resumptionNote(scenario: string, counts: Record<string, ResumptionCount>): string {
  const rates = Object.entries(counts).map(([name, c]) => `${name} ${(c.rate * 100).toFixed(1)}%`).join(', ');
  const halved = Object.entries(counts)
    .filter(([name, c]) => (name === 'tug' || name === 'node-min' || name.startsWith('tug@')) && c.protocols.includes('TLSv1.3') && c.rate < 0.9)
    .map(([name]) => name);
  const why = halved.length > 0
    ? ' Node\'s TLS server issues no new ticket on a resumed TLS 1.3 connection, and a TLS 1.3 client uses each ticket once'
      + ` (wrk's OpenSSL does; RFC 8446 C.4 asks clients not to reuse tickets): at best every other such connection to ${halved.join(', ')} resumes.`
    : '';
  return `"${scenario}": handshakes resumed, checked with wrk through a relay reading each ServerHello (c=10, 2 s): ${rates}.${why}`;
}

const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_HELLO = 2;
const EXT_PRE_SHARED_KEY = 41;
const EXT_SUPPORTED_VERSIONS = 43;

export class ResumptionTap {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #handshakes = 0;
  #resumed = 0;
  readonly #protocols = new Set<string>();

  private constructor(targetPort: number) {
    this.#server = createServer((client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.once('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
      let clientSessionId: Buffer | null = null;
      sniff(client, (hello) => {
        clientSessionId = sessionId(hello);
      });
      sniff(upstream, (hello) => {
        const extensions = serverHelloExtensions(hello);
        if (extensions === null || clientSessionId === null) return;
        this.#handshakes++;
        const tls13 = extensions.has(EXT_SUPPORTED_VERSIONS);
        this.#protocols.add(tls13 ? 'TLSv1.3' : 'TLSv1.2');
        const serverSessionId = sessionId(hello);
        const resumed = tls13 ? extensions.has(EXT_PRE_SHARED_KEY) : clientSessionId.length > 0 && serverSessionId !== null && clientSessionId.equals(serverSessionId);
        if (resumed) this.#resumed++;
      });
    });
  }

  /** A relay on a free loopback port to 127.0.0.1:targetPort. */
  static async start(targetPort: number): Promise<ResumptionTap> {
    const tap = new ResumptionTap(targetPort);
    await new Promise<void>((resolve) => tap.#server.listen(0, '127.0.0.1', resolve));
    return tap;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  count(): ResumptionCount {
    return { handshakes: this.#handshakes, resumed: this.#resumed, rate: this.#handshakes ? this.#resumed / this.#handshakes : 0, protocols: [...this.#protocols] };
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    await closed;
  }
}

/** Calls `onHello` with the first handshake message's body once its whole record has arrived. */
function sniff(socket: Socket, onHello: (message: { type: number; body: Buffer }) => void): void {
  let buffered = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    if (buffered.length < 5) return;
    const length = buffered.readUInt16BE(3);
    if (buffered.length < 5 + length) return;
    socket.off('data', onData);
    if (buffered[0] !== HANDSHAKE || length < 4) return;
    const bodyLength = buffered.readUIntBE(6, 3);
    onHello({ type: buffered[5], body: buffered.subarray(9, 9 + Math.min(bodyLength, length - 4)) });
  };
  socket.on('data', onData);
}

/** legacy_session_id of a ClientHello or ServerHello (both: version 2, random 32, id length 1, id). */
function sessionId(hello: { type: number; body: Buffer }): Buffer | null {
  if (hello.type !== CLIENT_HELLO && hello.type !== SERVER_HELLO) return null;
  if (hello.body.length < 35) return null;
  const length = hello.body[34];
  return Buffer.from(hello.body.subarray(35, 35 + length));
}

/** The extension types of a ServerHello, or null when the message is not one. */
function serverHelloExtensions(hello: { type: number; body: Buffer }): Set<number> | null {
  if (hello.type !== SERVER_HELLO) return null;
  const b = hello.body;
  let at = 35 + b[34] + 2 + 1; // session id, cipher suite, compression method
  const types = new Set<number>();
  if (at + 2 > b.length) return types;
  const end = Math.min(b.length, at + 2 + b.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    types.add(b.readUInt16BE(at));
    at += 4 + b.readUInt16BE(at + 2);
  }
  return types;
}
