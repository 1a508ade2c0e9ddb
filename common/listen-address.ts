// Parses the `host:port` listen addresses the CLI takes (`:80`, `127.0.0.1:8080`, `[::1]:9090`).
import { createServer, type Server as NetServer } from 'node:net';
import { configError } from './errors.ts';

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export function parseListenAddress(flag: string, value: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) {
    throw configError(`${flag}: expected HOST:PORT, :PORT or [IPv6]:PORT, got ${JSON.stringify(value)}`);
  }
  const host = match[1] ?? (match[2] || '0.0.0.0');
  return { host, port };
}

export function formatListenAddress(address: ListenAddress): string {
  return address.host.includes(':') ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * Listens with SO_REUSEPORT: every router worker binds the port itself and the
 * kernel spreads connections (exclusive: not through the cluster primary).
 */
export function listenReusingPort(server: NetServer, address: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port, reusePort: true, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** A port free on `host` right now (for listeners that several processes must bind alike). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
