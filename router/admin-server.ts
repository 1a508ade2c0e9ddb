// The admin listener: `/healthz` for the load balancer's probe (200 only once
// the first etcd snapshot is loaded and a worker serves; 503 while draining),
// `/routes`, the table as JSON, `/metrics` for Prometheus, and the dashboard at `/`
// (router/dashboard/). It keeps answering 200 while etcd is down: the
// router still serves its last known table, and taking every node out of the
// load balancer because etcd is down would turn an etcd outage into a total one.
import { createServer, type Server } from 'node:http';
import type { ListenAddress } from '../common/listen-address.ts';
import { serveDashboard, type DashboardSource } from './dashboard/dashboard-routes.ts';

export interface AdminState extends DashboardSource {
  ready(): boolean;
  health(): object;
  routes(): object;
  /** The Prometheus text exposition. */
  metrics(): Promise<string>;
}

export class AdminServer {
  readonly #server: Server;
  readonly #address: ListenAddress;

  constructor(address: ListenAddress, state: AdminState) {
    this.#address = address;
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (serveDashboard(req, res, path, state)) return;
      if (path === '/metrics') {
        state.metrics().then((text) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
          res.end(req.method === 'HEAD' ? undefined : text);
        }, (err: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${(err as Error).message}\n`);
        });
        return;
      }
      let status = 200;
      let body: object;
      if (path === '/healthz') {
        status = state.ready() ? 200 : 503;
        body = state.health();
      } else if (path === '/routes') {
        body = state.routes();
      } else {
        status = 404;
        body = { error: 'not found', endpoints: ['/', '/dashboard.json', '/cluster.json', '/healthz', '/routes', '/metrics'] };
      }
      const text = `${JSON.stringify(body, null, 2)}\n`;
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
    });
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#address.port, this.#address.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
