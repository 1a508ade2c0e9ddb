// The registry's configuration: every flag with its environment variable and
// documented default, in one table; `resolveRegistryConfig` validates them all
// at start-up and fills defaults in this one place.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configError } from '../common/errors.ts';
import { parseListenAddress, type ListenAddress } from '../common/listen-address.ts';
import type { LogLevel } from '../common/logger.ts';
import { optionReader, type OptionSpec } from '../common/option-spec.ts';
import { parseInteger, parseSize } from '../common/units.ts';
import { authOptions, resolveAuthConfig, type AuthConfig, type AuthFlag } from './auth/auth-config.ts';

export interface RegistryConfig extends AuthConfig {
  readonly listen: ListenAddress;
  readonly azureConnectionString: string;
  readonly container: string;
  readonly rootDirectory: string;
  readonly legacyRootPrefix: boolean;
  readonly uploadDir: string;
  readonly uploadExpiry: number;
  readonly cacheDir: string | null;
  readonly cacheSize: number;
  /** Answer a blob GET the node's cache does not hold with a 307 to a read-only SAS URL of the blob (off by default: see the README). */
  readonly blobRedirect: boolean;
  readonly maxManifestSize: number;
  readonly blockSize: number;
  readonly blockConcurrency: number;
  readonly idleTimeout: number;
  readonly drainTimeout: number;
  readonly accessLog: boolean;
  readonly logLevel: LogLevel;
  /** The admin listener (the dashboard, /metrics, /healthz); null when `off`. */
  readonly admin: ListenAddress | null;
  /** Pull-through cache of this upstream registry (read-only for clients); null: a registry of its own. */
  readonly proxy: ProxyConfig | null;
}

export interface ProxyConfig {
  readonly remote: URL;
  readonly credentials: { readonly username: string; readonly password: string } | null;
  /** How long a tag is served from storage before upstream is asked again. */
  readonly ttl: number;
}


/** Every `tug registry` flag: its environment variable, default and meaning (the README's table says the same). */
export const registryOptions = {
  listen: { flags: '--listen <addr>', env: 'TUG_REGISTRY_LISTEN', default: '127.0.0.1:5000', description: 'HTTP listener, HOST:PORT (loopback by default: units pull from localhost:5000)' },
  htpasswd: { flags: '--htpasswd <file>', env: 'TUG_REGISTRY_HTPASSWD', default: '', description: 'require basic auth, checked against this htpasswd file of bcrypt hashes (basic or token auth is required beyond loopback)' },
  ...authOptions,
  azureConnectionString: { flags: '--azure-connection-string <string>', env: 'AZURE_STORAGE_CONNECTION_STRING', default: undefined, description: 'Azure Storage connection string (required)' },
  container: { flags: '--container <name>', env: 'TUG_REGISTRY_CONTAINER', default: undefined, description: 'Azure Blob container holding every image (required; created when missing)' },
  rootDirectory: { flags: '--root-directory <prefix>', env: 'TUG_REGISTRY_ROOT_DIRECTORY', default: '', description: 'prefix of every blob name in the container (distribution\'s azure rootdirectory)' },
  legacyRootPrefix: { flags: '--legacy-root-prefix', env: 'TUG_REGISTRY_LEGACY_ROOT_PREFIX', default: undefined, description: 'name blobs as distribution 2.x\'s Azure driver did, with a leading "/" (serves a container written by 2.x; the env variable enables it when set)' },
  uploadDir: { flags: '--upload-dir <dir>', env: 'TUG_REGISTRY_UPLOAD_DIR', default: join(tmpdir(), 'tug-registry', 'uploads'), description: 'where chunked uploads are spooled until their digest is known (survives a registry restart)' },
  uploadExpiry: { flags: '--upload-expiry <duration>', env: 'TUG_REGISTRY_UPLOAD_EXPIRY', default: '24h', description: 'an unfinished upload older than this is removed' },
  cacheDir: { flags: '--cache-dir <dir>', env: 'TUG_REGISTRY_CACHE_DIR', default: '', description: 'on-disk cache of blobs and manifests for repeat pulls (none: every pull reads Azure)' },
  cacheSize: { flags: '--cache-size <size>', env: 'TUG_REGISTRY_CACHE_SIZE', default: '10GiB', description: 'bound of the cache; least recently used blobs are evicted first' },
  blobRedirect: { flags: '--blob-redirect', env: 'TUG_REGISTRY_BLOB_REDIRECT', default: undefined, description: 'answer a GET of a blob the node cache does not hold with a 307 to a 10-minute read-only SAS URL of it in Azure (clients must reach the storage account; such pulls do not fill the cache; the env variable enables it when set)' },
  maxManifestSize: { flags: '--max-manifest-size <size>', env: 'TUG_REGISTRY_MAX_MANIFEST_SIZE', default: '4MiB', description: 'largest manifest accepted (413 above)' },
  blockSize: { flags: '--block-size <size>', env: 'TUG_REGISTRY_BLOCK_SIZE', default: '8MiB', description: 'bytes per Azure block staged during an upload' },
  blockConcurrency: { flags: '--block-concurrency <n>', env: 'TUG_REGISTRY_BLOCK_CONCURRENCY', default: '2', description: 'blocks of one upload staged in parallel (memory per upload ≈ (n+1) × block size)' },
  idleTimeout: { flags: '--idle-timeout <duration>', env: 'TUG_REGISTRY_IDLE_TIMEOUT', default: '5m', description: 'a connection silent this long (even mid-body) is closed' },
  drainTimeout: { flags: '--drain-timeout <duration>', env: 'TUG_REGISTRY_DRAIN_TIMEOUT', default: '30s', description: 'on SIGTERM, longest wait for in-flight requests' },
  accessLog: { flags: '--no-access-log', env: 'TUG_REGISTRY_NO_ACCESS_LOG', default: undefined, description: 'disable the per-request access log (the env variable disables it when set)' },
  logLevel: { flags: '--log-level <level>', env: 'TUG_LOG_LEVEL', default: 'info', description: 'fatal, error, warn, info, debug, trace or silent' },
  proxyRemote: { flags: '--proxy-remote <url>', env: 'TUG_REGISTRY_PROXY_REMOTE', default: '', description: 'be a read-only pull-through cache of this upstream registry (e.g. https://registry-1.docker.io)' },
  proxyUsername: { flags: '--proxy-username <user>', env: 'TUG_REGISTRY_PROXY_USERNAME', default: '', description: 'user name for the upstream registry (basic auth, or to get its tokens)' },
  proxyPassword: { flags: '--proxy-password <password>', env: 'TUG_REGISTRY_PROXY_PASSWORD', default: '', description: 'password or access token for the upstream registry (prefer the env variable)' },
  proxyTtl: { flags: '--proxy-ttl <duration>', env: 'TUG_REGISTRY_PROXY_TTL', default: '5m', description: 'a cached tag is re-checked upstream after this long' },
  admin: { flags: '--admin <addr>', env: 'TUG_REGISTRY_ADMIN', default: '127.0.0.1:5001', description: 'admin listener (the dashboard, /metrics, /healthz), HOST:PORT, or "off"' },
} as const satisfies Record<RegistryFlag, OptionSpec>;

/**
 * A flag of `tug registry`: one per config field, but the token settings come from four `--token-*`
 * flags and the mirror's four `--proxy-*` flags make one `proxy`.
 */
export type RegistryFlag = Exclude<keyof RegistryConfig, 'token' | 'proxy'> | AuthFlag | 'proxyRemote' | 'proxyUsername' | 'proxyPassword' | 'proxyTtl';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
/** Azure's container naming rules: 3-63 chars, lowercase letters, digits and single hyphens, starting and ending alphanumeric. */
const CONTAINER = /^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$/;
/** Azure's limit on one staged block, and the smallest block worth a request. */
const MAX_BLOCK = 4000 * 1024 * 1024;
const MIN_BLOCK = 64 * 1024;

/** Raw values as commander hands them over (strings, or false for a negated boolean). */
export type RawRegistryOptions = Partial<Record<RegistryFlag, string | boolean>>;

export function resolveRegistryConfig(raw: RawRegistryOptions): RegistryConfig {
  const { get, duration } = optionReader(registryOptions, raw);
  const logLevel = get('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw configError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  const { azureConnectionString, container, rootDirectory, legacyRootPrefix } = resolveStorageOptions(get, raw.legacyRootPrefix);
  const uploadDir = get('uploadDir');
  if (uploadDir === '') throw configError('--upload-dir: must not be empty');
  const config: RegistryConfig = {
    listen: parseListenAddress('--listen', get('listen')),
    ...resolveAuthConfig(get),
    azureConnectionString,
    container,
    rootDirectory,
    legacyRootPrefix,
    uploadDir,
    uploadExpiry: duration('uploadExpiry'),
    cacheDir: get('cacheDir') === '' ? null : get('cacheDir'),
    cacheSize: parseSize('--cache-size', get('cacheSize')),
    blobRedirect: raw.blobRedirect === true,
    maxManifestSize: parseSize('--max-manifest-size', get('maxManifestSize')),
    blockSize: parseSize('--block-size', get('blockSize')),
    blockConcurrency: parseInteger('--block-concurrency', get('blockConcurrency'), 1, 64),
    idleTimeout: duration('idleTimeout'),
    drainTimeout: duration('drainTimeout'),
    accessLog: raw.accessLog !== false,
    logLevel,
    admin: get('admin') === 'off' ? null : parseListenAddress('--admin', get('admin')),
    proxy: resolveProxy(get, duration('proxyTtl')),
  };
  if (config.maxManifestSize < 1024 || config.maxManifestSize > 64 * 1024 * 1024) throw configError('--max-manifest-size: must be between 1KiB and 64MiB');
  if (config.auth === 'none' && !isLoopback(config.listen.host)) {
    throw configError(`--listen: ${config.listen.host} is reachable beyond this node; give --htpasswd (or --auth token), or listen on 127.0.0.1`);
  }
  if (config.cacheSize < 1024 * 1024) throw configError('--cache-size: must be at least 1MiB');
  if (config.blockSize < MIN_BLOCK || config.blockSize > MAX_BLOCK) throw configError('--block-size: must be between 64KiB and 4000MiB');
  return config;
}

function resolveProxy(get: (name: 'proxyRemote' | 'proxyUsername' | 'proxyPassword') => string, ttl: number): ProxyConfig | null {
  const remote = get('proxyRemote');
  const username = get('proxyUsername');
  const password = get('proxyPassword');
  if (remote === '') {
    if (username !== '' || password !== '') throw configError('--proxy-username/--proxy-password: only with --proxy-remote');
    return null;
  }
  let url: URL;
  try {
    url = new URL(remote);
  } catch {
    throw configError(`--proxy-remote: expected a URL such as https://registry-1.docker.io, got ${JSON.stringify(remote)}`);
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || (url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.username !== '') {
    throw configError('--proxy-remote: expected http(s)://host[:port] without path, query or credentials (give those with --proxy-username and --proxy-password)');
  }
  if ((username === '') !== (password === '')) throw configError('--proxy-username and --proxy-password: give both or neither');
  return { remote: url, credentials: username === '' ? null : { username, password }, ttl };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface StorageOptions {
  readonly azureConnectionString: string;
  readonly container: string;
  readonly rootDirectory: string;
  /** Off by default: distribution v3's naming. */
  readonly legacyRootPrefix: boolean;
}

/** Validates the storage flags `tug registry` and `tug registry gc` share. */
export function resolveStorageOptions(get: (name: Exclude<keyof StorageOptions, 'legacyRootPrefix'>) => string, legacyRootPrefix: string | boolean | undefined): StorageOptions {
  const azureConnectionString = get('azureConnectionString');
  if (!/(?:^|;)(?:AccountName|BlobEndpoint|SharedAccessSignature)=/i.test(azureConnectionString)) {
    throw configError('--azure-connection-string: expected an Azure Storage connection string (AccountName=…;AccountKey=…, or BlobEndpoint=…)');
  }
  const container = get('container');
  if (!CONTAINER.test(container)) throw configError(`--container: ${JSON.stringify(container)} is not a valid Azure container name`);
  const rootDirectory = get('rootDirectory');
  if (rootDirectory !== '' && !/^\/*[A-Za-z0-9._-]+(?:\/+[A-Za-z0-9._-]+)*\/*$/.test(rootDirectory)) {
    throw configError('--root-directory: expected path segments of letters, digits, ".", "_" and "-"');
  }
  // A boolean flag: commander sets it when the flag is given or its env variable is set (any value).
  return { azureConnectionString, container, rootDirectory, legacyRootPrefix: legacyRootPrefix === true };
}
