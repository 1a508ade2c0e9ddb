// The proxies under comparison, each started the same way: listening on a
// loopback port, proxying to the same two upstreams, with the same worker
// count. nginx is configured at its best (reuseport, upstream keepalive sized
// above the client connection count) so the baseline is never a handicapped one.
// Given a certificate, each also listens for HTTPS (TLS 1.2/1.3, h2 and http/1.1
// by ALPN, session resumption on: nginx's shared session cache and tickets,
// HAProxy's defaults, tickets with keys shared by the workers for Tug and for
// node-min, the minimal Node proxy that shows the floor: minimal-proxy.ts).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startProcess, waitStarted, type Started } from './processes.ts';

export interface Contender {
  readonly name: string;
  readonly port: number;
  /** The root pid (its tree is measured for CPU and memory). */
  readonly pid: number;
  readonly process: Started;
  /** Its HTTPS port, when it was started with `tls`. */
  readonly tlsPort?: number;
}

export interface TlsSetup {
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
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
  /** Also listen for HTTPS (absent or null: plain HTTP only). */
  readonly tls?: TlsSetup | null;
}

/** TLS 1.2 suites every contender offers: Tug's policy (router/tls-policy.ts), ECDHE + AEAD only. */
const TLS12_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305';

export const HOST = 'bench.bench';
const TUG = fileURLToPath(new URL('../bin/tug.ts', import.meta.url));
const MINIMAL_PROXY = fileURLToPath(new URL('./minimal-proxy.ts', import.meta.url));

export async function startNginx(s: ContenderSetup): Promise<Contender> {
  const conf = join(s.dir, 'nginx-proxy.conf');
  const location = `
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Request-Id $request_id;
    }`;
  // nginx 1.22 offers TLS 1.0-1.2 by default: name 1.2 and 1.3 as the other contenders do.
  const https = s.tls ? `
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_ciphers ${TLS12_CIPHERS};
  ssl_session_cache shared:SSL:20m;
  ssl_session_timeout 1h;
  ssl_session_tickets on;
  server {
    listen 127.0.0.1:${s.tls.port} ssl http2 reuseport backlog=4096;
    ssl_certificate ${s.tls.certFile};
    ssl_certificate_key ${s.tls.keyFile};${location}
  }` : '';
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
    listen 127.0.0.1:${s.port} reuseport backlog=4096;${location}
  }${https}
}
`);
  const process = startProcess('nginx', ['-c', conf, '-p', s.dir, '-e', join(s.dir, 'nginx-proxy-error.log')]);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`);
  return { name: 'nginx', port: s.port, pid: process.child.pid!, process, ...(s.tls ? { tlsPort: s.tls.port } : {}) };
}

export function haproxyAvailable(): boolean {
  return existsSync('/usr/sbin/haproxy');
}

export async function startHaproxy(s: ContenderSetup): Promise<Contender> {
  const conf = join(s.dir, 'haproxy.cfg');
  // HAProxy reads the certificate and its key from one file; its session cache and tickets are on by default.
  const pem = join(s.dir, 'haproxy.pem');
  if (s.tls) writeFileSync(pem, readFileSync(s.tls.certFile, 'utf8') + readFileSync(s.tls.keyFile, 'utf8'));
  writeFileSync(conf, `
global
  nbthread ${s.workers}
  maxconn 8000
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-ciphers ${TLS12_CIPHERS}
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
${s.tls ? `  bind 127.0.0.1:${s.tls.port} ssl crt ${pem} alpn h2,http/1.1
` : ''}  default_backend be
backend be
  balance roundrobin
${s.upstreams.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join('\n')}
`);
  const process = startProcess('haproxy', ['-f', conf, '-db']);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`);
  return { name: 'haproxy', port: s.port, pid: process.child.pid!, process, ...(s.tls ? { tlsPort: s.tls.port } : {}) };
}

/** The floor: a minimal raw-socket Node proxy doing the same per-request work, on the same Node as tug. */
export async function startNodeMin(s: ContenderSetup): Promise<Contender> {
  const process = startProcess(globalThis.process.execPath, [
    MINIMAL_PROXY,
    '--http', `127.0.0.1:${s.port}`,
    '--upstreams', s.upstreams.map((p) => `127.0.0.1:${p}`).join(','),
    '--workers', String(s.workers),
    ...(s.tls ? ['--https', `127.0.0.1:${s.tls.port}`, '--cert', s.tls.certFile, '--key', s.tls.keyFile] : []),
  ]);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`, { host: HOST });
  return { name: 'node-min', port: s.port, pid: process.child.pid!, process, ...(s.tls ? { tlsPort: s.tls.port } : {}) };
}

/** Another Node binary to run Tug's router with: its version, and the contender's name, `tug@<major>` (e.g. `tug@26`). */
export function describeRuntime(node: string): { node: string; version: string; name: string } {
  const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  const major = /^v(\d+)\./.exec(version)?.[1];
  if (major === undefined) throw new Error(`${node} --version printed ${JSON.stringify(version)}, not a Node version`);
  return { node, version, name: `tug@${major}` };
}

/**
 * Tug's router, run by the bench's own Node (`tug`) or by another Node binary (`node`, named
 * `name`): the same router on another runtime, in the same interleaved rounds.
 */
export async function startTug(s: ContenderSetup, extraArgs: readonly string[] = [], name = 'tug', node = globalThis.process.execPath): Promise<Contender> {
  const process = startProcess(node, [
    TUG, 'router',
    '--http', `127.0.0.1:${s.port}`,
    '--admin', `127.0.0.1:${s.adminPort}`,
    '--etcd', s.etcd,
    '--workers', String(s.workers),
    '--domain', 'bench',
    '--no-access-log',
    '--log-level', 'warn',
    ...(s.tls ? ['--https', `127.0.0.1:${s.tls.port}`, '--cert', s.tls.certFile, '--key', s.tls.keyFile] : ['--https', 'off']),
    ...extraArgs,
  ]);
  await waitStarted(process, `http://127.0.0.1:${s.adminPort}/healthz`);
  await waitStarted(process, `http://127.0.0.1:${s.port}/small`, { host: HOST });
  return { name, port: s.port, pid: process.child.pid!, process, ...(s.tls ? { tlsPort: s.tls.port } : {}) };
}
