// What the unit templates need: the option table (flags, environment variables,
// documented defaults) shared by `tug units render` and `tug deploy rollout`,
// and its one validation. Every value that ends up in a unit file is checked
// here, so a rendered unit never carries a space, a quote or a stray systemd
// specifier (`%`) that would change its meaning.
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { configError } from '../common/errors.ts';
import { formatListenAddress, parseListenAddress } from '../common/listen-address.ts';
import { parseInteger } from '../common/units.ts';
import { optionReader, type OptionSpec } from '../common/option-spec.ts';
import { SERVICE_NAME } from '../router/etcd/route-keys.ts';

export interface UnitsConfig {
  /** The app: service name in etcd, unit prefix, container name prefix. */
  readonly app: string;
  /** The app's image, pulled by every instance (e.g. localhost:5000/app:1.2). */
  readonly image: string;
  /** The port the app listens on inside its container, published on the host's same port. */
  readonly port: number;
  /** 'tcp' (connect to the port) or an HTTP path the announcer GETs (2xx/3xx = healthy). */
  readonly health: string;
  /** The image that runs `tug` itself on a node (router, registry, announcer). */
  readonly tugImage: string;
  readonly etcd: string;
  readonly etcdPrefix: string;
  readonly domain: string | null;
  readonly routerHttp: string;
  readonly routerAdmin: string;
  readonly registryEnvFile: string;
}

export const unitsOptions = {
  image: { flags: '--image <ref>', env: 'TUG_APP_IMAGE', default: undefined, description: 'the app image every instance runs, e.g. localhost:5000/app:1.2 (required)' },
  port: { flags: '--port <n>', env: 'TUG_APP_PORT', default: undefined, description: 'port the app listens on; published on the same host port (required)' },
  health: { flags: '--health <path|tcp>', env: 'TUG_APP_HEALTH', default: 'tcp', description: 'announcer health check: an HTTP path (e.g. /healthz) or "tcp" (connect to --port)' },
  tugImage: { flags: '--tug-image <ref>', env: 'TUG_IMAGE', default: 'tug:0.1.0', description: 'image that runs tug on the nodes (router, registry, announcer); pulled best-effort, so a pre-loaded image works' },
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints as seen from a node (routers and announcers)' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /services/ and /routes/' },
  domain: { flags: '--domain <domain>', env: 'TUG_DOMAIN', default: undefined, description: 'router: route <service>.<domain> without a rule' },
  routerHttp: { flags: '--router-http <addr>', env: 'TUG_ROUTER_HTTP', default: ':80', description: 'router HTTP listener on each node (the LB sends port 80 here)' },
  routerAdmin: { flags: '--router-admin <addr>', env: 'TUG_ROUTER_ADMIN', default: '0.0.0.0:9090', description: 'router admin listener on each node; the LB probes /healthz here' },
  registryEnvFile: { flags: '--registry-env-file <path>', env: 'TUG_REGISTRY_ENV_FILE', default: '/etc/tug/registry.env', description: 'node file with the registry\'s TUG_* settings (Azure account, listen address)' },
} as const satisfies Record<Exclude<keyof UnitsConfig, 'app'>, OptionSpec>;

export type RawUnitsOptions = Partial<Record<keyof typeof unitsOptions, string>>;

// Docker's reference grammar, narrowed to what is safe unquoted in a unit file.
const IMAGE = /^(?:[a-zA-Z0-9.-]+(?::\d{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$/;
const APP = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const HEALTH_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@/-]*$/;
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const FILE_PATH = /^\/[A-Za-z0-9._/-]+$/;

export function resolveUnitsConfig(app: string, raw: RawUnitsOptions): UnitsConfig {
  const { get } = optionReader(unitsOptions, raw);
  // The app name becomes a unit prefix (no '@'), an etcd service name and a container name.
  if (!APP.test(app) || !SERVICE_NAME.test(app)) throw configError(`<app>: ${JSON.stringify(app)} must be 1..64 of [A-Za-z0-9_.-], starting with a letter or digit`);
  const image = get('image');
  if (!IMAGE.test(image)) throw configError(`--image: ${JSON.stringify(image)} is not an image reference like localhost:5000/app:1.2`);
  const tugImage = get('tugImage');
  if (!IMAGE.test(tugImage)) throw configError(`--tug-image: ${JSON.stringify(tugImage)} is not an image reference`);
  const health = get('health');
  if (health !== 'tcp' && !HEALTH_PATH.test(health)) throw configError('--health: expected "tcp" or an HTTP path like /healthz (no %, ? or spaces)');
  const etcd = parseEtcdEndpoints(get('etcd')).join(',');
  if (/[\s%"']/.test(etcd)) throw configError('--etcd: endpoints may not contain spaces, quotes or %');
  const etcdPrefix = raw.etcdPrefix ?? '';
  if (etcdPrefix !== '' && !/^\/[A-Za-z0-9._/-]*[^/]$/.test(etcdPrefix)) throw configError('--etcd-prefix: must start with / and not end with /');
  const domainRaw = raw.domain ?? '';
  const domain = domainRaw === '' ? null : domainRaw.toLowerCase().replace(/\.$/, '');
  if (domain !== null && !DOMAIN.test(domain)) throw configError(`--domain: ${JSON.stringify(domainRaw)} is not a domain name`);
  const registryEnvFile = get('registryEnvFile');
  if (!FILE_PATH.test(registryEnvFile)) throw configError('--registry-env-file: expected an absolute path without spaces');
  return {
    app,
    image,
    port: parseInteger('--port', get('port'), 1, 65535),
    health,
    tugImage,
    etcd,
    etcdPrefix,
    domain,
    routerHttp: formatListenAddress(parseListenAddress('--router-http', get('routerHttp'))),
    routerAdmin: formatListenAddress(parseListenAddress('--router-admin', get('routerAdmin'))),
    registryEnvFile,
  };
}
