// A TCP proxy the test controls, for injecting network faults between the
// router and etcd: suspend() cuts every connection and refuses new ones (like
// a partition), resume() lets traffic through again on the same port. The target
// may be a function asked at each connection (the ACME tests pick a router per validation).
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  readonly port: number;
  readonly #targetPort: number | (() => Promise<number>);
  readonly #sockets = new Set<Socket>();
  #server: Server | null = null;

  private constructor(port: number, targetPort: number | (() => Promise<number>)) {
    this.port = port;
    this.#targetPort = targetPort;
  }

  static async start(targetPort: number | (() => Promise<number>)): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new TcpProxy(port, targetPort);
    await proxy.resume();
    return proxy;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async resume(): Promise<void> {
    if (this.#server) return;
    const server = createServer((client) => {
      const target = this.#targetPort;
      if (typeof target === 'number') {
        this.#pipe(client, target);
        return;
      }
      client.pause();
      this.#sockets.add(client);
      client.on('error', () => client.destroy());
      target().then((port) => this.#pipe(client, port), () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.#server = server;
  }

  #pipe(client: Socket, port: number): void {
    const upstream = connect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
      s.on('error', () => { client.destroy(); upstream.destroy(); });
    }
    client.pipe(upstream).pipe(client);
    client.resume();
  }

  async suspend(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  close(): Promise<void> {
    return this.suspend();
  }
}
