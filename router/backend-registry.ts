// One Backend per address, shared by all instances that announce it and kept
// alive by reference counting: a route change that keeps an address keeps its
// pool and health; the last release drains and closes it.
import { Backend, type BackendOptions } from './backend.ts';

export class BackendRegistry {
  readonly #backends = new Map<string, Backend>();
  readonly #options: BackendOptions;

  constructor(options: BackendOptions) {
    this.#options = options;
  }

  acquire(host: string, port: number): Backend {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    let backend = this.#backends.get(address);
    if (!backend) {
      backend = new Backend(host, port, this.#options);
      this.#backends.set(address, backend);
    }
    backend.refs++;
    return backend;
  }

  release(backend: Backend): void {
    if (--backend.refs > 0) return;
    if (this.#backends.get(backend.address) === backend) this.#backends.delete(backend.address);
    // Drain: requests already on the pool finish; nothing new is routed to it.
    void backend.close();
  }

  get size(): number {
    return this.#backends.size;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#backends.values()].map((b) => b.close()));
    this.#backends.clear();
  }

  async destroy(err?: Error): Promise<void> {
    await Promise.all([...this.#backends.values()].map((b) => b.destroy(err)));
    this.#backends.clear();
  }
}
