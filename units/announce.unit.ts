// The announcer template `<app>-announce@.service`: the sidekick that puts
// /services/<app>/%i in etcd while instance %i passes its health check. It is
// bound to its instance (BindsTo: it stops when the app stops; After: it starts
// after it and, on stop, is stopped first, so the key is withdrawn before the
// app goes away) and scheduled on the same machine (MachineOf).
import type { UnitsConfig } from './units-config.ts';

export function announceTemplateName(app: string): string {
  return `${app}-announce@.service`;
}

export function announceUnit(config: UnitsConfig): { name: string; text: string } {
  const { app, port } = config;
  const health = config.health === 'tcp'
    ? `tcp://\${COREOS_PRIVATE_IPV4}:${port}`
    : `http://\${COREOS_PRIVATE_IPV4}:${port}${config.health}`;
  const args = [
    'announce',
    `--etcd ${config.etcd}`,
    ...(config.etcdPrefix ? [`--etcd-prefix ${config.etcdPrefix}`] : []),
    `--service ${app}`,
    '--instance %i',
    `--address \${COREOS_PRIVATE_IPV4}:${port}`,
    `--health ${health}`,
  ].join(' ');
  return {
    name: announceTemplateName(app),
    text: `[Unit]
Description=Announces ${app} instance %i to the Tug routers
BindsTo=${app}@%i.service
After=${app}@%i.service docker.service
Requires=docker.service

[Service]
EnvironmentFile=/etc/environment
TimeoutStartSec=5min
ExecStartPre=-/usr/bin/docker rm -f ${app}-announce-%i
ExecStartPre=-/usr/bin/docker pull ${config.tugImage}
ExecStart=/usr/bin/docker run --rm --name ${app}-announce-%i --net=host ${config.tugImage} ${args}
ExecStop=/usr/bin/docker stop -t 10 ${app}-announce-%i
Restart=always
RestartSec=2

[X-Fleet]
MachineOf=${app}@%i.service
`,
  };
}
