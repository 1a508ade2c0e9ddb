// The router's configuration: every flag with its environment variable and
// documented default, in one table; `resolveRouterConfig` validates them all at
// start-up and fills defaults in this one place.
import { availableParallelism } from 'node:os';
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { configError } from '../common/errors.ts';
import { parseListenAddress, type ListenAddress } from '../common/listen-address.ts';
import type { LogLevel } from '../common/logger.ts';
import { parseDuration, parseInteger, parseSize } from '../common/units.ts';

export interface RouterConfig {
  readonly http: ListenAddress;
  readonly admin: ListenAddress;
  readonly etcd: readonly string[];
  readonly etcdPrefix: string;
  readonly domain: string | null;
  readonly workers: number;
  readonly connectTimeout: number;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly upstreamKeepAlive: number;
  readonly maxConnections: number;
  readonly clientHeaderTimeout: number;
  readonly clientIdleTimeout: number;
  readonly keepAliveTimeout: number;
  readonly maxHeaderSize: number;
  readonly maxFails: number;
  readonly ejectBase: number;
  readonly ejectMax: number;
  readonly maxAttempts: number;
  readonly drainTimeout: number;
  readonly etcdProbeInterval: number;
  readonly accessLog: boolean;
  readonly logLevel: LogLevel;
}

export interface OptionSpec {
  /** commander flag syntax */
  readonly flags: string;
  readonly env: string;
  readonly description: string;
  readonly default: string | undefined;
}

/** Every router flag: its environment variable, default and meaning (README's table is generated from the same words). */
export const routerOptions = {
  http: { flags: '--http <addr>', env: 'TUG_HTTP', default: ':80', description: 'HTTP listener, HOST:PORT' },
  admin: { flags: '--admin <addr>', env: 'TUG_ADMIN', default: '127.0.0.1:9090', description: 'admin listener (/healthz, /routes)' },
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints, comma-separated' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /services/ and /routes/' },
  domain: { flags: '--domain <domain>', env: 'TUG_DOMAIN', default: undefined, description: 'route <service>.<domain> to <service> without a rule' },
  workers: { flags: '--workers <n>', env: 'TUG_WORKERS', default: 'cores', description: 'proxy worker processes ("cores" = one per core)' },
  connectTimeout: { flags: '--connect-timeout <duration>', env: 'TUG_CONNECT_TIMEOUT', default: '5s', description: 'upstream TCP connect timeout' },
  responseTimeout: { flags: '--response-timeout <duration>', env: 'TUG_RESPONSE_TIMEOUT', default: '60s', description: 'upstream response-header timeout (504 after)' },
  idleTimeout: { flags: '--idle-timeout <duration>', env: 'TUG_IDLE_TIMEOUT', default: '60s', description: 'upstream idle timeout between body chunks' },
  upstreamKeepAlive: { flags: '--upstream-keep-alive <duration>', env: 'TUG_UPSTREAM_KEEP_ALIVE', default: '4s', description: 'how long idle upstream connections are kept' },
  maxConnections: { flags: '--max-connections <n>', env: 'TUG_MAX_CONNECTIONS', default: '0', description: 'cap on connections per backend per worker (0 = none)' },
  clientHeaderTimeout: { flags: '--client-header-timeout <duration>', env: 'TUG_CLIENT_HEADER_TIMEOUT', default: '10s', description: 'time a client has to send its request head (408 after)' },
  clientIdleTimeout: { flags: '--client-idle-timeout <duration>', env: 'TUG_CLIENT_IDLE_TIMEOUT', default: '60s', description: 'client inactivity allowed during a request' },
  keepAliveTimeout: { flags: '--keep-alive-timeout <duration>', env: 'TUG_KEEP_ALIVE_TIMEOUT', default: '75s', description: 'idle client keep-alive connections are closed after this' },
  maxHeaderSize: { flags: '--max-header-size <size>', env: 'TUG_MAX_HEADER_SIZE', default: '16KiB', description: 'largest request head (431 above)' },
  maxFails: { flags: '--max-fails <n>', env: 'TUG_MAX_FAILS', default: '2', description: 'consecutive upstream failures that eject a backend' },
  ejectBase: { flags: '--eject-time <duration>', env: 'TUG_EJECT_TIME', default: '1s', description: 'first ejection period; doubles per ejection in a row' },
  ejectMax: { flags: '--eject-max <duration>', env: 'TUG_EJECT_MAX', default: '30s', description: 'longest ejection period' },
  maxAttempts: { flags: '--max-attempts <n>', env: 'TUG_MAX_ATTEMPTS', default: '3', description: 'most backends one request may try (1..5)' },
  drainTimeout: { flags: '--drain-timeout <duration>', env: 'TUG_DRAIN_TIMEOUT', default: '10s', description: 'on SIGTERM, longest wait for in-flight requests' },
  etcdProbeInterval: { flags: '--etcd-probe-interval <duration>', env: 'TUG_ETCD_PROBE_INTERVAL', default: '1s', description: 'how often etcd reachability and watch progress are checked' },
  accessLog: { flags: '--no-access-log', env: 'TUG_NO_ACCESS_LOG', default: undefined, description: 'disable the per-request access log (the env variable disables it when set)' },
  logLevel: { flags: '--log-level <level>', env: 'TUG_LOG_LEVEL', default: 'info', description: 'fatal, error, warn, info, debug, trace or silent' },
} as const satisfies Record<keyof RouterConfig, OptionSpec>;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Raw values as commander hands them over (strings, or false for a negated boolean). */
export type RawRouterOptions = Partial<Record<keyof RouterConfig, string | boolean>>;

export function resolveRouterConfig(raw: RawRouterOptions): RouterConfig {
  const get = (name: keyof RouterConfig): string => {
    const value = raw[name] ?? routerOptions[name].default;
    if (value === undefined || typeof value === 'boolean') throw configError(`${routerOptions[name].flags} is required`);
    return value;
  };
  const flag = (name: keyof RouterConfig) => routerOptions[name].flags.split(' ')[0];
  const duration = (name: keyof RouterConfig) => {
    const ms = parseDuration(flag(name), get(name));
    if (ms <= 0) throw configError(`${flag(name)}: must be greater than zero`);
    return ms;
  };
  const domainValue = raw.domain ?? undefined;
  const domain = typeof domainValue === 'string' && domainValue !== '' ? domainValue.toLowerCase().replace(/\.$/, '') : null;
  if (domain !== null && !DOMAIN.test(domain)) throw configError(`--domain: ${JSON.stringify(domainValue)} is not a domain name`);
  const logLevel = get('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw configError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  const workersRaw = get('workers');
  const etcdPrefix = get('etcdPrefix');
  if (etcdPrefix !== '' && !/^\/[\x21-\x7e]*[^/]$/.test(etcdPrefix)) throw configError('--etcd-prefix: must start with / and not end with /');
  const config: RouterConfig = {
    http: parseListenAddress('--http', get('http')),
    admin: parseListenAddress('--admin', get('admin')),
    etcd: parseEtcdEndpoints(get('etcd')),
    etcdPrefix,
    domain,
    workers: workersRaw === 'cores' ? availableParallelism() : parseInteger('--workers', workersRaw, 1, 256),
    connectTimeout: duration('connectTimeout'),
    responseTimeout: duration('responseTimeout'),
    idleTimeout: duration('idleTimeout'),
    upstreamKeepAlive: duration('upstreamKeepAlive'),
    maxConnections: parseInteger('--max-connections', get('maxConnections'), 0, 1_000_000),
    clientHeaderTimeout: duration('clientHeaderTimeout'),
    clientIdleTimeout: duration('clientIdleTimeout'),
    keepAliveTimeout: duration('keepAliveTimeout'),
    maxHeaderSize: parseSize('--max-header-size', get('maxHeaderSize')),
    maxFails: parseInteger('--max-fails', get('maxFails'), 1, 100),
    ejectBase: duration('ejectBase'),
    ejectMax: duration('ejectMax'),
    maxAttempts: parseInteger('--max-attempts', get('maxAttempts'), 1, 5),
    drainTimeout: duration('drainTimeout'),
    etcdProbeInterval: duration('etcdProbeInterval'),
    accessLog: raw.accessLog !== false,
    logLevel,
  };
  if (config.maxHeaderSize < 1024 || config.maxHeaderSize > 1024 * 1024) throw configError('--max-header-size: must be between 1KiB and 1MiB');
  if (config.ejectMax < config.ejectBase) throw configError('--eject-max: must not be shorter than --eject-time');
  return config;
}
