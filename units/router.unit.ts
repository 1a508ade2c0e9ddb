// The router unit: one `tug router` per node (Global=true), in the Tug image
// with the host's network so it binds port 80 and the admin port directly.
// Stopping it sends SIGTERM through docker: /healthz turns 503, the load
// balancer's probe takes the node out, in-flight requests drain.
import type { UnitsConfig } from './units-config.ts';

export const ROUTER_UNIT = 'tug-router.service';

export function routerUnit(config: UnitsConfig): { name: string; text: string } {
  const args = [
    'router',
    `--http ${config.routerHttp}`,
    `--admin ${config.routerAdmin}`,
    `--etcd ${config.etcd}`,
    ...(config.etcdPrefix ? [`--etcd-prefix ${config.etcdPrefix}`] : []),
    ...(config.domain ? [`--domain ${config.domain}`] : []),
  ].join(' ');
  return {
    name: ROUTER_UNIT,
    text: `[Unit]
Description=Tug router: the edge reverse proxy on every node
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=5min
ExecStartPre=-/usr/bin/docker rm -f tug-router
ExecStartPre=-/usr/bin/docker pull ${config.tugImage}
ExecStart=/usr/bin/docker run --rm --name tug-router --net=host ${config.tugImage} ${args}
ExecStop=/usr/bin/docker stop -t 15 tug-router
Restart=always
RestartSec=5

[X-Fleet]
Global=true
`,
  };
}
