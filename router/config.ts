// The router's configuration: every flag with its environment variable and
// documented default, in one table; `resolveRouterConfig` validates them all at
// start-up and fills defaults in this one place.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { resolve } from 'node:path';
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { optionReader } from '../common/option-spec.ts';
import { configError } from '../common/errors.ts';
import { parseListenAddress, type ListenAddress } from '../common/listen-address.ts';
import { resolveLogFormat, type LogFormat, type LogLevel } from '../common/logger.ts';
import { parseDuration, parseInteger, parseSize } from '../common/units.ts';
import { ACCESS_LOG_FORMATS, type AccessLogFormat } from './core/access-log.ts';
import { readCertificateFiles } from './tls/tls-certificate.ts';

export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

export interface RouterConfig {
  readonly http: ListenAddress;
  /** The HTTPS (TLS, HTTP/2 and HTTP/1.1) listener; null when off. */
  readonly https: ListenAddress | null;
  /** --cert/--key pairs, in order (the first is the default certificate unless etcd has /tls/default). */
  readonly certFiles: readonly CertificateFiles[];
  readonly websocketDrain: number;
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
  /** On SIGTERM, ms to keep serving (and accepting) with /healthz 503, so the load balancer stops sending first. */
  readonly drainDelay: number;
  readonly etcdProbeInterval: number;
  /** After a burst, a quiet worker runs one memory-reducing GC (router/process/quiet-heap.ts). */
  readonly quietGc: boolean;
  readonly accessLog: boolean;
  readonly logLevel: LogLevel;
  /** `auto` resolved here, in the primary, so every worker writes what the primary does. */
  readonly logFormat: LogFormat;
  readonly accessLogFormat: AccessLogFormat;
  /** This router's name under /routers/ in etcd. */
  readonly nodeName: string;
  /** ACME (router/acme/), used only when a route says "acme": true. */
  readonly acmeDirectory: string;
  readonly acmeEmail: string | null;
  /** Extra CA (PEM file) trusted for the directory's HTTPS, or null. */
  readonly acmeCaFile: string | null;
  /** TTL of the etcd lease that holds a name's order lock, ms (whole seconds). */
  readonly acmeLockTtl: number;
  /** Renew when less than this remains, ms; null: at two thirds of the lifetime. */
  readonly acmeRenewBefore: number | null;
  /** First retry after a failed order, ms; doubles per failure in a row (jittered) up to ACME_RETRY_MAX. */
  readonly acmeRetry: number;
  /** The challenge this router's orders ask the directory to validate; tls-alpn-01 also makes its HTTPS listener answer them (HTTP-01 is always answered). */
  readonly acmeChallenge: AcmeChallengeType;
}

export type AcmeChallengeType = 'http-01' | 'tls-alpn-01';
export const ACME_CHALLENGE_TYPES: readonly AcmeChallengeType[] = ['http-01', 'tls-alpn-01'];

export interface OptionSpec {
  /** commander flag syntax */
  readonly flags: string;
  readonly env: string;
  readonly description: string;
  readonly default: string | undefined;
  /** The flag may be given several times (and a value may list several, comma-separated). */
  readonly repeatable?: true;
}

/** Longest wait between failed orders of one name (Caddy's ceiling too): a failing name is retried at least four times a day. */
export const ACME_RETRY_MAX = 6 * 60 * 60 * 1000;
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

/** Flags are config fields, except --cert and --key, which resolve together into certFiles. */
export type RouterOptionName = Exclude<keyof RouterConfig, 'certFiles'> | 'cert' | 'key';

/** Every router flag: its environment variable, default and meaning (README's table is generated from the same words). */
export const routerOptions = {
  http: { flags: '--http <addr>', env: 'TUG_HTTP', default: ':80', description: 'HTTP listener, HOST:PORT' },
  https: { flags: '--https <addr>', env: 'TUG_HTTPS', default: ':443', description: 'HTTPS listener (TLS 1.2/1.3, HTTP/2 and HTTP/1.1), HOST:PORT, or "off"' },
  cert: { flags: '--cert <file>', env: 'TUG_CERT', default: undefined, repeatable: true, description: 'PEM certificate chain to serve (repeatable, paired in order with --key); names from its subjectAltName' },
  key: { flags: '--key <file>', env: 'TUG_KEY', default: undefined, repeatable: true, description: 'PEM private key of the --cert at the same position (repeatable)' },
  websocketDrain: { flags: '--websocket-drain <duration>', env: 'TUG_WEBSOCKET_DRAIN', default: '10m', description: 'how long a removed backend\'s WebSockets stay open before the router closes them (1001)' },
  admin: { flags: '--admin <addr>', env: 'TUG_ADMIN', default: '127.0.0.1:9090', description: 'admin listener (the dashboard at /, /healthz, /routes, /metrics)' },
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints, comma-separated' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /services/, /routes/, /tls/ and /acme/' },
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
  drainDelay: { flags: '--drain-delay <duration>', env: 'TUG_DRAIN_DELAY', default: '0s', description: 'on SIGTERM, keep serving this long with /healthz 503 before draining, so the load balancer\'s probe takes the node out first (its interval × unhealthy threshold)' },
  etcdProbeInterval: { flags: '--etcd-probe-interval <duration>', env: 'TUG_ETCD_PROBE_INTERVAL', default: '1s', description: 'how often etcd reachability and watch progress are checked' },
  quietGc: { flags: '--quiet-gc <on|off>', env: 'TUG_QUIET_GC', default: 'on', description: 'after a burst, a worker quiet for 5 s runs one memory-reducing GC: ~20 MiB back per worker, a 35–150 ms pause once per quiet spell (off: flat latency, more memory)' },
  accessLog: { flags: '--no-access-log', env: 'TUG_NO_ACCESS_LOG', default: undefined, description: 'disable the per-request access log (the env variable disables it when set)' },
  logLevel: { flags: '--log-level <level>', env: 'TUG_LOG_LEVEL', default: 'info', description: 'fatal, error, warn, info, debug, trace or silent' },
  logFormat: { flags: '--log-format <format>', env: 'TUG_LOG_FORMAT', default: 'auto', description: 'json (pino, for machines), pretty (for people), or auto: pretty when stdout is a terminal' },
  accessLogFormat: { flags: '--access-log-format <format>', env: 'TUG_ACCESS_LOG_FORMAT', default: 'json', description: 'json (a log record per request), common or combined (NCSA Common/Combined Log Format lines)' },
  nodeName: { flags: '--node-name <name>', env: 'TUG_NODE_NAME', default: undefined, description: 'this router\'s name in etcd, under /routers/<name> (default: the hostname)' },
  acmeDirectory: { flags: '--acme-directory <url>', env: 'TUG_ACME_DIRECTORY', default: LETS_ENCRYPT_DIRECTORY, description: 'ACME directory for routes with "acme": true (contacted only when one exists)' },
  acmeEmail: { flags: '--acme-email <address>', env: 'TUG_ACME_EMAIL', default: undefined, description: 'contact address of the ACME account (expiry notices)' },
  acmeCaFile: { flags: '--acme-ca-file <file>', env: 'TUG_ACME_CA_FILE', default: undefined, description: 'extra PEM CA trusted for the ACME directory\'s HTTPS (a private ACME CA)' },
  acmeLockTtl: { flags: '--acme-lock-ttl <duration>', env: 'TUG_ACME_LOCK_TTL', default: '30s', description: 'lease of a name\'s order lock in etcd: how soon another router takes over from one that died' },
  acmeRenewBefore: { flags: '--acme-renew-before <duration>', env: 'TUG_ACME_RENEW_BEFORE', default: undefined, description: 'renew when less than this remains (default: at two thirds of the lifetime)' },
  acmeChallenge: { flags: '--acme-challenge <method>', env: 'TUG_ACME_CHALLENGE', default: 'http-01', description: 'how orders are validated: http-01 (port 80) or tls-alpn-01 (port 443 only; give it to every router: only those answer it)' },
  acmeRetry: { flags: '--acme-retry <duration>', env: 'TUG_ACME_RETRY', default: '1m', description: 'first retry after a failed order; doubles per failure (jittered), up to 6h' },
} as const satisfies Record<RouterOptionName, OptionSpec>;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
const DOMAIN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Raw values as commander hands them over (strings, lists for repeatable flags, or false for a negated boolean). */
export type RawRouterOptions = Partial<Record<RouterOptionName, string | boolean | string[]>>;

export function resolveRouterConfig(raw: RawRouterOptions): RouterConfig {
  const { get, duration } = optionReader(routerOptions, raw);
  const domainValue = raw.domain ?? undefined;
  const domain = typeof domainValue === 'string' && domainValue !== '' ? domainValue.toLowerCase().replace(/\.$/, '') : null;
  if (domain !== null && !DOMAIN.test(domain)) throw configError(`--domain: ${JSON.stringify(domainValue)} is not a domain name`);
  const logLevel = get('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw configError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  const accessLogFormat = get('accessLogFormat') as AccessLogFormat;
  if (!ACCESS_LOG_FORMATS.includes(accessLogFormat)) throw configError(`--access-log-format: expected one of ${ACCESS_LOG_FORMATS.join(', ')}`);
  const nodeName = typeof raw.nodeName === 'string' && raw.nodeName !== '' ? raw.nodeName : hostname();
  if (!NODE_NAME.test(nodeName)) throw configError(`--node-name: ${JSON.stringify(nodeName)} must be 1-128 of A-Z a-z 0-9 _ . - (starting with a letter or digit)`);
  const workersRaw = get('workers');
  const etcdPrefix = get('etcdPrefix');
  if (etcdPrefix !== '' && !/^\/[\x21-\x7e]*[^/]$/.test(etcdPrefix)) throw configError('--etcd-prefix: must start with / and not end with /');
  const httpsValue = get('https').trim();
  const https = httpsValue === '' || httpsValue === 'off' ? null : parseListenAddress('--https', httpsValue);
  const certFiles = resolveCertificateFiles(raw.cert, raw.key);
  if (https === null && certFiles.length > 0) throw configError('--cert: given with --https off; nothing would serve it');
  const config: RouterConfig = {
    http: parseListenAddress('--http', get('http')),
    https,
    certFiles,
    websocketDrain: parseDuration('--websocket-drain', get('websocketDrain')),
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
    drainDelay: parseDuration('--drain-delay', get('drainDelay')),
    etcdProbeInterval: duration('etcdProbeInterval'),
    quietGc: parseOnOff('--quiet-gc', get('quietGc')),
    accessLog: raw.accessLog !== false,
    logLevel,
    logFormat: resolveLogFormat(get('logFormat'), '--log-format'),
    accessLogFormat,
    nodeName,
    ...resolveAcmeOptions(raw, get, duration),
  };
  if (config.maxHeaderSize < 1024 || config.maxHeaderSize > 1024 * 1024) throw configError('--max-header-size: must be between 1KiB and 1MiB');
  if (config.ejectMax < config.ejectBase) throw configError('--eject-max: must not be shorter than --eject-time');
  if (config.acmeRetry > ACME_RETRY_MAX) throw configError('--acme-retry: at most 6h');
  if (config.acmeChallenge === 'tls-alpn-01' && https === null) throw configError('--acme-challenge tls-alpn-01: needs the HTTPS listener (--https is off)');
  if (https !== null && https.port !== 0 && https.port === config.http.port && https.host === config.http.host) {
    throw configError('--https: must not be the --http address');
  }
  return config;
}

/** Pairs --cert and --key in order and checks every pair now, so a bad file stops start-up with its name. */
function resolveCertificateFiles(certs: RawRouterOptions['cert'], keys: RawRouterOptions['key']): CertificateFiles[] {
  const list = (value: RawRouterOptions['cert']) => (typeof value === 'string' ? [value] : Array.isArray(value) ? value : [])
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '')
    .map((v) => resolve(v));
  const certList = list(certs);
  const keyList = list(keys);
  if (certList.length !== keyList.length) throw configError(`--cert and --key: ${certList.length} certificate(s) but ${keyList.length} key(s); give them in pairs`);
  const pairs = certList.map((cert, i) => ({ cert, key: keyList[i] }));
  for (const pair of pairs) {
    const spec = readCertificateFiles(pair.cert, pair.key);
    if (typeof spec === 'string') throw configError(`--cert ${pair.cert} --key ${pair.key}: ${spec}`);
  }
  return pairs;
}

const EMAIL = /^[^@\s<>,;:"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/;

/** The --acme-* flags: the directory must be an https URL, the CA file a readable PEM certificate. */
function resolveAcmeOptions(raw: RawRouterOptions, get: (name: RouterOptionName) => string, duration: (name: RouterOptionName, min?: number) => number) {
  const directory = get('acmeDirectory');
  let url: URL;
  try {
    url = new URL(directory);
  } catch {
    throw configError(`--acme-directory: ${JSON.stringify(directory)} is not a URL`);
  }
  if (url.protocol !== 'https:') throw configError('--acme-directory: must be an https:// URL (RFC 8555 §6.1)');
  const email = typeof raw.acmeEmail === 'string' && raw.acmeEmail !== '' ? raw.acmeEmail : null;
  if (email !== null && !EMAIL.test(email)) throw configError(`--acme-email: ${JSON.stringify(email)} is not an email address`);
  const caFile = typeof raw.acmeCaFile === 'string' && raw.acmeCaFile !== '' ? resolve(raw.acmeCaFile) : null;
  if (caFile !== null) {
    try {
      new X509Certificate(readFileSync(caFile));
    } catch (err) {
      throw configError(`--acme-ca-file ${caFile}: not a readable PEM certificate (${(err as Error).message})`);
    }
  }
  const lockTtl = duration('acmeLockTtl', 2000);
  const renewBefore = typeof raw.acmeRenewBefore === 'string' && raw.acmeRenewBefore !== '' ? duration('acmeRenewBefore') : null;
  const challenge = get('acmeChallenge').trim();
  if (!ACME_CHALLENGE_TYPES.includes(challenge as AcmeChallengeType)) throw configError(`--acme-challenge: ${JSON.stringify(challenge)} is not one of ${ACME_CHALLENGE_TYPES.join(', ')}`);
  return {
    acmeDirectory: url.href,
    acmeEmail: email,
    acmeCaFile: caFile,
    acmeLockTtl: Math.ceil(lockTtl / 1000) * 1000,
    acmeRenewBefore: renewBefore,
    acmeRetry: duration('acmeRetry', 1000),
    acmeChallenge: challenge as AcmeChallengeType,
  };
}

function parseOnOff(flag: string, value: string): boolean {
  const v = value.trim().toLowerCase();
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw configError(`${flag}: ${JSON.stringify(value)} is not on or off`);
}
