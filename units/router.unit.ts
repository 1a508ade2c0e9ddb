// The router unit: one `tug router` per node (Global=true), in the Tug image
// with the host's network so it binds port 80 and the admin port directly.
// Stopping it sends SIGTERM through docker: /healthz turns 503 and every
// response says Connection: close, the router keeps serving for --drain-delay
// (Azure's probe: 5 s × 2 failures) while the load balancer takes the node out,
// then in-flight requests drain (--drain-timeout 10 s); docker waits 30 s.
import type { UnitsConfig } from './units-config.ts';

export const ROUTER_UNIT = 'tug-router.service';

export function routerUnit(config: UnitsConfig): { name: string; text: string } {
  const args = [
    'router',
    `--http ${config.routerHttp}`,
    `--admin ${config.routerAdmin}`,
    `--etcd ${config.etcd}`,
    '--drain-delay 11s',
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
ExecStop=/usr/bin/docker stop -t 30 tug-router
TimeoutStopSec=35
Restart=always
RestartSec=5

[X-Fleet]
Global=true
`,
  };
}
