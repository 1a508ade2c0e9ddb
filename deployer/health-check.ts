// An app instance's health check: an HTTP(S) GET that must answer 2xx/3xx, or
// a TCP connect, each bounded by a timeout. A check never throws.
import { connect } from 'node:net';
import { configError } from '../common/errors.ts';

export type HealthCheck = () => Promise<boolean>;

export function parseHealthTarget(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`--health: ${JSON.stringify(value)} is not a URL (http://HOST:PORT/PATH or tcp://HOST:PORT)`);
  }
  if (!['http:', 'https:', 'tcp:'].includes(url.protocol)) throw configError('--health: use http://, https:// or tcp://');
  if (url.protocol === 'tcp:' && !url.port) throw configError('--health: tcp:// needs a port');
  return url;
}

export function createHealthCheck(target: URL, timeout: number): HealthCheck {
  if (target.protocol === 'tcp:') return () => tcpCheck(target.hostname.replace(/^\[(.*)\]$/, '$1'), Number(target.port), timeout);
  return async () => {
    try {
      const res = await fetch(target, { signal: AbortSignal.timeout(timeout), redirect: 'manual', headers: { 'user-agent': 'tug-announce' } });
      await res.body?.cancel();
      return res.status >= 200 && res.status < 400;
    } catch {
      return false;
    }
  };
}

function tcpCheck(host: string, port: number, timeout: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}
