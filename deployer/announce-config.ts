// `tug announce` configuration: the option table (flags, environment variables,
// documented defaults) and its one validation at start-up.
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { optionReader } from '../common/option-spec.ts';
import { configError } from '../common/errors.ts';
import type { LogLevel } from '../common/logger.ts';
import { parseDuration, parseInteger } from '../common/units.ts';
import { SERVICE_NAME } from '../router/etcd/route-keys.ts';
import { parseHealthTarget } from './health-check.ts';
import { privateIPv4 } from './host-address.ts';

export interface AnnounceConfig {
  readonly etcd: readonly string[];
  readonly etcdPrefix: string;
  readonly service: string;
  readonly instance: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number | null;
  readonly ttl: number;
  readonly health: URL;
  readonly healthInterval: number;
  readonly healthTimeout: number;
  readonly logLevel: LogLevel;
}

export const announceOptions = {
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints, comma-separated' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /services/ (as the router\'s)' },
  service: { flags: '--service <name>', env: 'TUG_SERVICE', default: undefined, description: 'service to announce (required)' },
  instance: { flags: '--instance <name>', env: 'TUG_INSTANCE', default: undefined, description: 'instance name, e.g. @1 or %i (required)' },
  address: { flags: '--address <host:port>', env: 'TUG_ADDRESS', default: undefined, description: 'address the router should use; ":PORT" takes the host from COREOS_PRIVATE_IPV4 (required)' },
  weight: { flags: '--weight <n>', env: 'TUG_WEIGHT', default: undefined, description: 'relative weight 1..100 (announced as JSON; omitted = host:port)' },
  ttl: { flags: '--ttl <seconds>', env: 'TUG_TTL', default: '10', description: 'lease TTL: the key disappears this long after the announcer dies' },
  health: { flags: '--health <url>', env: 'TUG_HEALTH', default: undefined, description: 'http(s)://… (2xx/3xx) or tcp://host:port; default: TCP connect to --address' },
  healthInterval: { flags: '--health-interval <duration>', env: 'TUG_HEALTH_INTERVAL', default: '2s', description: 'time between health checks' },
  healthTimeout: { flags: '--health-timeout <duration>', env: 'TUG_HEALTH_TIMEOUT', default: '1s', description: 'a check slower than this fails' },
  logLevel: { flags: '--log-level <level>', env: 'TUG_LOG_LEVEL', default: 'info', description: 'pino level' },
} as const;

export type RawAnnounceOptions = Partial<Record<keyof typeof announceOptions, string>>;

const INSTANCE = /^[^/\s]{1,128}$/;

export function resolveAnnounceConfig(raw: RawAnnounceOptions, env: NodeJS.ProcessEnv = process.env): AnnounceConfig {
  const { get: required } = optionReader(announceOptions, raw);
  const service = required('service');
  if (!SERVICE_NAME.test(service)) throw configError(`--service: ${JSON.stringify(service)} is not a service name ([A-Za-z0-9][A-Za-z0-9_.-]*)`);
  const instance = required('instance');
  if (!INSTANCE.test(instance)) throw configError('--instance: must be 1..128 characters without "/" or spaces');
  const address = required('address');
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(address);
  if (!match || Number(match[3]) < 1 || Number(match[3]) > 65535) throw configError(`--address: expected HOST:PORT or :PORT, got ${JSON.stringify(address)}`);
  let host = match[1] ?? match[2];
  if (host === '') {
    const found = privateIPv4(env);
    if (found === null) throw configError('--address: ":PORT" needs COREOS_PRIVATE_IPV4 in the environment or /etc/environment');
    host = found;
  }
  const port = Number(match[3]);
  const hostInUrl = host.includes(':') ? `[${host}]` : host;
  const ttl = parseInteger('--ttl', required('ttl'), 2, 3600);
  const healthInterval = parseDuration('--health-interval', required('healthInterval'));
  const healthTimeout = parseDuration('--health-timeout', required('healthTimeout'));
  if (healthInterval < 100) throw configError('--health-interval: at least 100ms');
  if (healthTimeout >= healthInterval) throw configError('--health-timeout: must be shorter than --health-interval');
  if (healthInterval >= ttl * 1000) throw configError('--health-interval: must be shorter than the lease --ttl');
  const etcdPrefix = raw.etcdPrefix ?? '';
  if (etcdPrefix !== '' && !/^\/[\x21-\x7e]*[^/]$/.test(etcdPrefix)) throw configError('--etcd-prefix: must start with / and not end with /');
  return {
    etcd: parseEtcdEndpoints(required('etcd')),
    etcdPrefix,
    service,
    instance,
    host,
    port,
    weight: raw.weight === undefined ? null : parseInteger('--weight', raw.weight, 1, 100),
    ttl,
    health: parseHealthTarget(raw.health ?? `tcp://${hostInUrl}:${port}`),
    healthInterval,
    healthTimeout,
    logLevel: required('logLevel') as LogLevel,
  };
}
