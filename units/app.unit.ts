// The app template `<app>@.service`: one container per instance, pulled from
// the node-local registry, published on the same host port. Conflicts keeps two
// instances of one app off the same machine (HA, and the host port is fixed).
// The container is removed before start (a leftover from a crash) and after stop.
import type { UnitsConfig } from './units-config.ts';

export function appTemplateName(app: string): string {
  return `${app}@.service`;
}

export function appUnit(config: UnitsConfig): { name: string; text: string } {
  const { app, image, port } = config;
  return {
    name: appTemplateName(app),
    text: `[Unit]
Description=${app} instance %i (${image})
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=5min
ExecStartPre=-/usr/bin/docker rm -f ${app}-%i
ExecStartPre=/usr/bin/docker pull ${image}
ExecStart=/usr/bin/docker run --name ${app}-%i -p ${port}:${port} -e PORT=${port} ${image}
ExecStop=/usr/bin/docker stop -t 10 ${app}-%i
ExecStopPost=-/usr/bin/docker rm -f ${app}-%i
Restart=on-failure
RestartSec=5

[X-Fleet]
Conflicts=${app}@*.service
`,
  };
}
