// The upstream backends every contender proxies to: Debian's nginx serving
// fixed bodies from files (12 B, 16 KiB, 1 MiB), on two ports, one worker, so
// that the backends are cheap and identical for every contender.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startProcess, waitStarted, type Started } from './processes.ts';

export interface Upstreams {
  readonly ports: readonly number[];
  readonly process: Started;
}

export const BODIES = { small: 'hello world\n'.length, '16k': 16 * 1024, '1m': 1024 * 1024 } as const;
export type BodyName = keyof typeof BODIES;

export async function startUpstreams(dir: string, ports: readonly number[]): Promise<Upstreams> {
  const root = join(dir, 'upstream-root');
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'small'), 'hello world\n');
  writeFileSync(join(root, '16k'), Buffer.alloc(BODIES['16k'], 'x'));
  writeFileSync(join(root, '1m'), Buffer.alloc(BODIES['1m'], 'y'));
  const conf = join(dir, 'upstreams.conf');
  writeFileSync(conf, `
worker_processes 1;
daemon off;
pid ${join(dir, 'upstreams.pid')};
error_log ${join(dir, 'upstreams-error.log')} warn;
events { worker_connections 20000; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  open_file_cache max=16;
  default_type text/plain;
${ports.map((port) => `  server { listen 127.0.0.1:${port} reuseport backlog=4096; root ${root}; location / { } location = /healthz { return 200 "ok\\n"; } }`).join('\n')}
}
`);
  const process = startProcess('nginx', ['-c', conf, '-p', dir, '-e', join(dir, 'upstreams-error.log')]);
  for (const port of ports) await waitStarted(process, `http://127.0.0.1:${port}/small`);
  return { ports, process };
}
