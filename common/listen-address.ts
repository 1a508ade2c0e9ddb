// Parses the `host:port` listen addresses the CLI takes (`:80`, `127.0.0.1:8080`, `[::1]:9090`).
import { readFileSync } from 'node:fs';
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

/** Listens on `address`; resolves with the bound address (port 0 picks a free one), rejects on a bind error. */
export function listenOn(server: NetServer, address: ListenAddress): Promise<ListenAddress> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      const bound = server.address() as { address: string; port: number };
      resolve({ host: bound.address, port: bound.port });
    });
  });
}

/**
 * A port free on `host` right now (for listeners that several processes must
 * bind alike, and for tests). Chosen at random below the kernel's ephemeral
 * range: a port the kernel handed out for port 0 is also what it hands the
 * next outgoing connection, which then holds it when the listener binds.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [low, high] = portPool();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port)) continue;
    if (await bindable(host, port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on ${host} in ${low}-${high} after 50 attempts`);
}

/** Ports this process already handed out: never the same one twice. */
const handedOut = new Set<number>();

function portPool(): [number, number] {
  let ephemeralLow = 32768;
  try {
    ephemeralLow = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralLow;
  } catch {
    // Not Linux: Linux's default 32768 is below the IANA range (49152) too.
  }
  return [10000, Math.max(ephemeralLow - 1, 10999)];
}

function bindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
