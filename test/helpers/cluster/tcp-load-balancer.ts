// The cluster's Azure load balancer: a TCP pass-through that spreads new
// connections round-robin over the backends its health probe finds healthy
// (HTTP GET of each router's admin /healthz on a fresh connection; down after
// `downAfter` failed probes in a row, up after `upAfter` good ones, a probe
// slower than `probeTimeout` failed). Like Azure's, it never retries a
// connection: a backend that refuses or drops it fails the client's connection,
// and an established flow stays with its backend whatever the probe says.
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { waitFor } from '../wait.ts';

export interface BalancedBackend {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** The health probe's target: http://host:port/healthz. */
  readonly probe: { readonly host: string; readonly port: number; readonly path: string };
}

export interface ProbeSettings {
  readonly interval: number;
  readonly timeout: number;
  readonly downAfter: number;
  readonly upAfter: number;
}

export interface BackendTransition {
  readonly backend: string;
  readonly healthy: boolean;
  /** Date.now() of the probe result that changed the state. */
  readonly at: number;
}

class BackendState {
  readonly backend: BalancedBackend;
  healthy = false;
  streak = 0;
  probing = false;
  connections = 0;

  constructor(backend: BalancedBackend) {
    this.backend = backend;
  }
}

export class TcpLoadBalancer {
  readonly host: string;
  port = 0;
  readonly settings: ProbeSettings;
  readonly transitions: BackendTransition[] = [];
  /** Client connections the LB failed because the chosen backend refused or dropped the connect. */
  connectFailures = 0;
  readonly #states: BackendState[];
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;

  private constructor(host: string, backends: readonly BalancedBackend[], settings: ProbeSettings) {
    this.host = host;
    this.settings = settings;
    this.#states = backends.map((b) => new BackendState(b));
    this.#server = createServer((client) => this.#accept(client));
  }

  /** Listens on host:port (port 0: any free port). */
  static async start(host: string, backends: readonly BalancedBackend[], settings: Partial<ProbeSettings> = {}, port = 0): Promise<TcpLoadBalancer> {
    const lb = new TcpLoadBalancer(host, backends, { interval: 200, timeout: 500, downAfter: 2, upAfter: 2, ...settings });
    await new Promise<void>((resolve) => lb.#server.listen(port, host, resolve));
    lb.port = (lb.#server.address() as { port: number }).port;
    lb.#timer = setInterval(() => { for (const state of lb.#states) lb.#probe(state); }, lb.settings.interval);
    for (const state of lb.#states) lb.#probe(state);
    return lb;
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  healthy(name: string): boolean {
    return this.#state(name).healthy;
  }

  /** Resolves with the time (Date.now()) the probe marked `name` as `healthy`, waiting for it if need be. */
  async waitFor(name: string, healthy: boolean, { since = 0, timeout = 30_000 } = {}): Promise<number> {
    const found = await waitFor(() => {
      if (this.#state(name).healthy !== healthy) return null;
      const t = this.transitions.findLast((e) => e.backend === name && e.healthy === healthy && e.at >= since);
      return t ?? (since === 0 ? { at: Date.now() } : null);
    }, { timeout, interval: 20, what: `the load balancer to mark ${name} ${healthy ? 'up' : 'down'}` });
    return found.at;
  }

  async waitAllHealthy(timeout = 30_000): Promise<void> {
    await waitFor(() => this.#states.every((s) => s.healthy), { timeout, interval: 20, what: 'every backend healthy in the load balancer' });
  }

  #state(name: string): BackendState {
    const state = this.#states.find((s) => s.backend.name === name);
    if (!state) throw new Error(`no backend ${name}`);
    return state;
  }

  #accept(client: Socket): void {
    this.#track(client);
    client.on('error', () => {});
    const healthy = this.#states.filter((s) => s.healthy);
    if (healthy.length === 0) {
      client.destroy();
      return;
    }
    const state = healthy[this.#next++ % healthy.length];
    const upstream = connect(state.backend.port, state.backend.host);
    this.#track(upstream);
    state.connections++;
    let connected = false;
    upstream.once('connect', () => { connected = true; });
    upstream.once('close', () => { state.connections--; });
    upstream.on('error', () => {
      if (!connected) this.connectFailures++;
      client.destroy();
    });
    client.on('error', () => upstream.destroy());
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  #probe(state: BackendState): void {
    if (state.probing) return;
    state.probing = true;
    const { host, port, path } = state.backend.probe;
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      state.probing = false;
      this.#record(state, ok);
    };
    const req = request({ host, port, path, agent: false, timeout: this.settings.timeout }, (res) => {
      res.resume();
      done(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('probe timed out')));
    req.on('error', () => done(false));
    req.end();
  }

  #record(state: BackendState, ok: boolean): void {
    if (ok === state.healthy) {
      state.streak = 0;
      return;
    }
    state.streak++;
    if (state.streak >= (ok ? this.settings.upAfter : this.settings.downAfter)) {
      state.healthy = ok;
      state.streak = 0;
      this.transitions.push({ backend: state.backend.name, healthy: ok, at: Date.now() });
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
