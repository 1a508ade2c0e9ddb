// What the registry's dashboard shows (GET /dashboard.json on `--admin`), built
// from the registry's own counters (registry-metrics.ts, the same that /metrics
// renders), rates over them (common/dashboard/counter-rates.ts), its health and
// a summary of its configuration. Pure: the caller takes the snapshot. Never
// puts a secret in the summary (the connection string, the upstream password).
import type { CounterTotals, CounterWindow } from '../../common/dashboard/counter-rates.ts';
import { requestRate } from '../../common/dashboard/counter-rates.ts';
import { formatListenAddress } from '../../common/listen-address.ts';
import { histogramQuantile } from '../../common/dashboard/histogram-quantile.ts';
import type { RegistryConfig } from '../config.ts';
import { LATENCY_BUCKETS, type RegistryCounters, type RouteLabel } from '../registry-metrics.ts';

/** The order routes are listed in: as a pull, then a push, goes. */
const ROUTES: readonly RouteLabel[] = ['base', 'catalog', 'tag', 'manifest', 'blob', 'upload', 'referrers', 'other'];

export interface RegistryHealth {
  readonly ready: boolean;
  readonly status: string;
  readonly container: string;
}

export interface RegistryDashboardInput {
  readonly now: number;
  readonly startedAt: number;
  readonly version: string;
  readonly admin: string;
  readonly config: RegistryConfig;
  readonly health: RegistryHealth;
  readonly counters: RegistryCounters;
  /** Over counterTotals(counters). */
  readonly window: CounterWindow;
}

export interface RouteView {
  readonly route: RouteLabel;
  readonly requests: number;
  readonly clientErrors: number;
  readonly serverErrors: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Over the window; null before there is one. */
  readonly rps: number | null;
  readonly errorShare: number | null;
  readonly bytesInPerSecond: number | null;
  readonly bytesOutPerSecond: number | null;
}

export interface AzureOperationView {
  readonly operation: string;
  readonly requests: number;
  readonly notFound: number;
  readonly errors: number;
  readonly rps: number | null;
  /** Errors / operations over the window; null without operations in it. */
  readonly errorShare: number | null;
  /** Seconds, from the histogram buckets: over the window when it had operations, else since start. */
  readonly p50: number | null;
  readonly p99: number | null;
  readonly latencyOver: 'window' | 'since start';
}

export interface ConfigSummary {
  readonly listen: string;
  readonly container: string;
  readonly rootDirectory: string;
  readonly blobNaming: string;
  readonly mirror: { readonly remote: string; readonly ttlSeconds: number; readonly upstreamCredentials: boolean } | null;
  readonly readOnly: boolean;
  readonly auth: {
    readonly mode: RegistryConfig['auth'];
    readonly htpasswd: string | null;
    readonly acl: string | null;
    readonly token: { readonly realm: string; readonly service: string; readonly issuer: string } | null;
  };
  readonly uploadDir: string;
  readonly uploadExpirySeconds: number;
  readonly blockSize: number;
  readonly blockConcurrency: number;
  readonly maxManifestSize: number;
  readonly cache: { readonly dir: string; readonly size: number } | null;
  /** --blob-redirect: blob reads the node cache does not hold are 307s to storage. */
  readonly blobRedirect: boolean;
}

export interface RegistryDashboardData {
  readonly generatedAt: string;
  readonly registry: { readonly version: string; readonly startedAt: string; readonly uptimeSeconds: number; readonly admin: string } & RegistryHealth;
  readonly config: ConfigSummary;
  /** The span the rates cover; null on the first poll. */
  readonly windowSeconds: number | null;
  readonly traffic: Omit<RouteView, 'route'>;
  readonly routes: readonly RouteView[];
  readonly azure: readonly AzureOperationView[];
  readonly cache: {
    readonly bytes: number;
    readonly entries: number;
    readonly hits: number;
    readonly misses: number;
    readonly evictions: number;
    readonly fills: number;
    /** Hits / reads since start, and over the window; null without reads. */
    readonly hitRatio: number | null;
    readonly recentHitRatio: number | null;
  } | null;
  readonly uploads: { readonly sessions: number; readonly requests: number };
}

/** The counters as vectors by key, for CounterRates. */
export function counterTotals(counters: RegistryCounters): CounterTotals {
  const totals = new Map<string, readonly number[]>();
  for (const [route, counts] of counters.requests) totals.set(`requests ${route}`, counts);
  for (const route of new Set([...counters.bytesIn.keys(), ...counters.bytesOut.keys()])) {
    totals.set(`bytes ${route}`, [counters.bytesIn.get(route) ?? 0, counters.bytesOut.get(route) ?? 0]);
  }
  for (const [operation, c] of counters.azure) totals.set(`azure ${operation}`, [c.ok, c.notFound, c.error, ...c.latency.buckets]);
  if (counters.cache) totals.set('cache', [counters.cache.hits, counters.cache.misses]);
  return totals;
}

export function buildRegistryDashboard(input: RegistryDashboardInput): RegistryDashboardData {
  const { now, counters, window } = input;
  const routeView = (routes: readonly RouteLabel[]): Omit<RouteView, 'route'> => {
    const requestKeys = routes.map((r) => `requests ${r}`);
    const byteKeys = routes.map((r) => `bytes ${r}`);
    const classes = window.total(requestKeys);
    const [bytesIn = 0, bytesOut = 0] = window.total(byteKeys);
    const rate = requestRate(window, requestKeys);
    const bytesRate = window.perSecond(byteKeys);
    return {
      requests: classes.reduce((a, b) => a + b, 0),
      clientErrors: classes[3] ?? 0,
      serverErrors: classes[4] ?? 0,
      bytesIn,
      bytesOut,
      rps: rate?.rps ?? null,
      errorShare: rate?.errorShare ?? null,
      bytesInPerSecond: bytesRate === null ? null : bytesRate[0] ?? 0,
      bytesOutPerSecond: bytesRate === null ? null : bytesRate[1] ?? 0,
    };
  };
  const seen = ROUTES.filter((route) => counters.requests.has(route));

  const azure = [...counters.azure].map(([operation, c]): AzureOperationView => {
    const added = window.increase([`azure ${operation}`]);
    const recent = added === null ? 0 : added[0] + added[1] + added[2];
    const [buckets, count] = recent > 0 ? [added!.slice(3), recent] : [c.latency.buckets, c.latency.count];
    return {
      operation,
      requests: c.ok + c.notFound + c.error,
      notFound: c.notFound,
      errors: c.error,
      rps: added === null ? null : recent / window.seconds!,
      errorShare: recent > 0 ? added![2] / recent : null,
      p50: histogramQuantile(0.5, LATENCY_BUCKETS, buckets, count),
      p99: histogramQuantile(0.99, LATENCY_BUCKETS, buckets, count),
      latencyOver: recent > 0 ? 'window' : 'since start',
    };
  }).sort((a, b) => a.operation.localeCompare(b.operation));

  let cache: RegistryDashboardData['cache'] = null;
  if (counters.cache) {
    const c = counters.cache;
    const added = window.increase(['cache']);
    const recentReads = added === null ? 0 : added[0] + added[1];
    cache = {
      bytes: c.bytes,
      entries: c.entries,
      hits: c.hits,
      misses: c.misses,
      evictions: c.evictions,
      fills: c.fills,
      hitRatio: c.hits + c.misses === 0 ? null : c.hits / (c.hits + c.misses),
      recentHitRatio: recentReads === 0 ? null : added![0] / recentReads,
    };
  }

  return {
    generatedAt: new Date(now).toISOString(),
    registry: { version: input.version, startedAt: new Date(input.startedAt).toISOString(), uptimeSeconds: Math.round((now - input.startedAt) / 1000), admin: input.admin, ...input.health },
    config: configSummary(input.config),
    windowSeconds: window.seconds,
    traffic: routeView(ROUTES),
    routes: seen.map((route) => ({ route, ...routeView([route]) })),
    azure,
    cache,
    uploads: counters.uploads,
  };
}

function configSummary(config: RegistryConfig): ConfigSummary {
  return {
    listen: formatListenAddress(config.listen),
    container: config.container,
    rootDirectory: config.rootDirectory,
    blobNaming: config.legacyRootPrefix ? 'distribution 2.x (leading "/")' : 'distribution v3',
    mirror: config.proxy === null ? null : { remote: config.proxy.remote.origin, ttlSeconds: config.proxy.ttl / 1000, upstreamCredentials: config.proxy.credentials !== null },
    readOnly: config.proxy !== null,
    auth: {
      mode: config.auth,
      htpasswd: config.htpasswd,
      acl: config.acl,
      token: config.token === null ? null : { realm: config.token.realm, service: config.token.service, issuer: config.token.issuer },
    },
    uploadDir: config.uploadDir,
    uploadExpirySeconds: config.uploadExpiry / 1000,
    blockSize: config.blockSize,
    blockConcurrency: config.blockConcurrency,
    maxManifestSize: config.maxManifestSize,
    cache: config.cacheDir === null ? null : { dir: config.cacheDir, size: config.cacheSize },
    blobRedirect: config.blobRedirect,
  };
}
