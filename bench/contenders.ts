// The proxies under comparison, each started the same way: listening on a
// loopback port, proxying to the same two upstreams, with the same worker
// count. nginx is configured at its best (reuseport, upstream keepalive sized
// above the client connection count) so the baseline is never a handicapped one.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, waitStarted, type Started } from './processes.ts';

export interface Contender {
  readonly name: string;
  readonly port: number;
  /** The root pid (its tree is measured for CPU and memory). */
  readonly pid: number;
  readonly process: Started;
}

export interface ContenderSetup {
  readonly dir: string;
  readonly port: number;
  readonly upstreams: readonly number[];
  readonly workers: number;
  /** Upstream keep-alive connections nginx may keep; at least the client connection count. */
  readonly keepalive: number;
  readonly etcd: string;
  readonly adminPort: number;
}

export const HOST = 'bench.bench';
const TUG = fileURLToPath(new URL('../bin/tug.ts', import.meta.url));

export function startTugRaw(s: ContenderSetup): Promise<Contender> {
  return startTug(s, ['--engine', 'raw'], 'tug-raw');
}

export async function startNginx(s: ContenderSetup): Promise<Contender> {
  const conf = join(s.dir, 'nginx-proxy.conf');
  writeFileSync(conf, `
worker_processes ${s.workers};
daemon off;
pid ${join(s.dir, 'nginx-proxy.pid')};
error_log ${join(s.dir, 'nginx-proxy-error.log')} warn;
events { worker_connections 20000; }
http {
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  upstream up {
${s.upstreams.map((p) => `    server 127.0.0.1:${p};`).join('\n')}
    keepalive ${s.keepalive};
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${s.port} reuseport backlog=4096;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
    }
  }
}
`);
  const process = startProcess('nginx', ['-c', conf, '-p', s.dir, '-e', join(s.dir, 'nginx-proxy-error.log')]);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`);
  return { name: 'nginx', port: s.port, pid: process.child.pid!, process };
}

export function haproxyAvailable(): boolean {
  return existsSync('/usr/sbin/haproxy');
}

export async function startHaproxy(s: ContenderSetup): Promise<Contender> {
  const conf = join(s.dir, 'haproxy.cfg');
  writeFileSync(conf, `
global
  nbthread ${s.workers}
  maxconn 8000
defaults
  mode http
  timeout connect 5s
  timeout client 120s
  timeout server 120s
  option http-keep-alive
  option forwardfor
  http-reuse always
frontend fe
  bind 127.0.0.1:${s.port}
  default_backend be
backend be
  balance roundrobin
${s.upstreams.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join('\n')}
`);
  const process = startProcess('haproxy', ['-f', conf, '-db']);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`);
  return { name: 'haproxy', port: s.port, pid: process.child.pid!, process };
}

/** Tug's router with the node:http + undici engine (`tug`) or the raw-socket engine (`tug-raw`). */
export async function startTug(s: ContenderSetup, extraArgs: readonly string[] = [], name = 'tug'): Promise<Contender> {
  const process = startProcess(globalThis.process.execPath, [
    TUG, 'router',
    '--http', `127.0.0.1:${s.port}`,
    '--admin', `127.0.0.1:${s.adminPort}`,
    '--etcd', s.etcd,
    '--workers', String(s.workers),
    '--domain', 'bench',
    '--no-access-log',
    '--log-level', 'warn',
    ...extraArgs,
  ]);
  await waitStarted(process, `http://127.0.0.1:${s.adminPort}/healthz`);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`, { host: HOST });
  return { name, port: s.port, pid: process.child.pid!, process };
}
