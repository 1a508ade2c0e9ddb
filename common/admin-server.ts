// An admin listener (the router's and the registry's `--admin`): `/healthz`
// for a load balancer's or systemd's probe (200 when ready, 503 otherwise,
// with a JSON body saying why), `/metrics` in the Prometheus text format, and
// whatever JSON documents the component adds (the router's `/routes`), and
// pages a component serves itself (the dashboards). It never serves
// the component's traffic, so it stays loopback by default.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn, type ListenAddress } from './listen-address.ts';
import { EXPOSITION_CONTENT_TYPE } from './prometheus-text.ts';

export interface AdminState {
  ready(): boolean;
  health(): object;
  /** The Prometheus text exposition. */
  metrics(): Promise<string>;
  /** More JSON endpoints by path (e.g. `/routes`). */
  readonly documents?: Readonly<Record<string, () => object>>;
  /** Pages the component serves itself (true: answered), tried before the rest. */
  readonly pages?: (req: IncomingMessage, res: ServerResponse, path: string) => boolean;
  /** Paths those pages answer, for the 404 body's list. */
  readonly pagePaths?: readonly string[];
}

export class AdminServer {
  readonly #server: Server;
  readonly #address: ListenAddress;

  constructor(address: ListenAddress, state: AdminState) {
    this.#address = address;
    const documents = state.documents ?? {};
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (state.pages?.(req, res, path) === true) return;
      if (path === '/metrics') {
        state.metrics().then((text) => {
          res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        }, (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${(err as Error).message}\n`);
        });
        return;
      }
      let status = 200;
      let body: object;
      const document = Object.hasOwn(documents, path) ? documents[path] : undefined;
      if (path === '/healthz') {
        status = state.ready() ? 200 : 503;
        body = state.health();
      } else if (document) {
        body = document();
      } else {
        status = 404;
        body = { error: 'not found', endpoints: [...(state.pagePaths ?? []), '/healthz', ...Object.keys(documents), '/metrics'] };
      }
      const text = `${JSON.stringify(body, null, 2)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  }

  /** Listens; returns the bound address (port 0 picks a free one). */
  listen(): Promise<ListenAddress> {
    return listenOn(this.#server, this.#address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
