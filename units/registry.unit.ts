// The registry unit: one `tug registry` per node (Global=true) so every node
// pulls app images from localhost:5000. Its settings (Azure account, listen
// address) come from a node file, never from the unit, so no secret is ever
// submitted to fleet (fleet stores units in etcd, readable cluster-wide).
// The Tug image itself is never pulled from localhost:5000: this unit is what serves it.
// The upload spool (chunked pushes resume across restarts) and the node cache
// live on the host under /var/lib/tug-registry, so a container restart keeps them.
import type { UnitsConfig } from './units-config.ts';

export const REGISTRY_UNIT = 'tug-registry.service';

export function registryUnit(config: UnitsConfig): { name: string; text: string } {
  return {
    name: REGISTRY_UNIT,
    text: `[Unit]
Description=Tug registry: the image registry on every node (localhost:5000)
After=docker.service
Requires=docker.service

[Service]
TimeoutStartSec=5min
ExecStartPre=-/usr/bin/docker rm -f tug-registry
ExecStartPre=-/usr/bin/docker pull ${config.tugImage}
ExecStartPre=/usr/bin/mkdir -p /var/lib/tug-registry/uploads /var/lib/tug-registry/cache
ExecStart=/usr/bin/docker run --rm --name tug-registry --net=host --env-file ${config.registryEnvFile} -v /var/lib/tug-registry:/var/lib/tug-registry -e TUG_REGISTRY_UPLOAD_DIR=/var/lib/tug-registry/uploads -e TUG_REGISTRY_CACHE_DIR=/var/lib/tug-registry/cache ${config.tugImage} registry
ExecStop=/usr/bin/docker stop -t 15 tug-registry
Restart=always
RestartSec=5

[X-Fleet]
Global=true
`,
  };
}
