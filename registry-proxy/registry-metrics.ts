// What the registry counts for Prometheus (`/metrics` on `--admin`): requests
// by route, method and status class, their duration, bytes in and out, Azure
// operations and their latency, the node cache, uploads in progress. Recording
// is a few map and array updates; the text is made only when scraped.
//
// Bytes are counted on the socket (headers included) at the end of each
// request, as the difference since the connection's previous request: the
// total is exact, and a pipelined request's bytes may be counted with the one
// before it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Exposition } from '../common/prometheus-text.ts';

/** The registry's URL space as metrics label it (`other`: no such endpoint). */
export type RouteLabel = 'base' | 'catalog' | 'tag' | 'manifest' | 'upload' | 'blob' | 'referrers' | 'other';

/** Upper bounds of the latency histograms, seconds. */
export const LATENCY_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const METHODS = new Set(['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE']);
const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

/** The route of a request path, without matching it fully (requests refused before routing are labelled too). */
export function routeLabel(url: string): RouteLabel {
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  if (!path.startsWith('/v2/') && path !== '/v2') return 'other';
  if (path === '/v2' || path === '/v2/') return 'base';
  if (path === '/v2/_catalog') return 'catalog';
  if (path.endsWith('/tags/list')) return 'tag';
  if (path.includes('/manifests/')) return 'manifest';
  if (path.includes('/blobs/uploads')) return 'upload';
  if (path.includes('/blobs/')) return 'blob';
  if (path.includes('/referrers/')) return 'referrers';
  return 'other';
}

/** A latency histogram with its count and sum. */
export class Histogram {
  readonly buckets = new Float64Array(LATENCY_BUCKETS.length);
  count = 0;
  sum = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
    if (i < LATENCY_BUCKETS.length) this.buckets[i]++;
    this.count++;
    this.sum += seconds;
  }
}

/** The node cache's counters, read when scraped. */
export interface CacheCounters {
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  readonly fills: number;
  readonly bytes: number;
  readonly entries: number;
}

/** One Azure operation's counts by outcome and its latency histogram (buckets over LATENCY_BUCKETS, not cumulative). */
export interface AzureCounters {
  readonly ok: number;
  readonly notFound: number;
  readonly error: number;
  readonly latency: { readonly buckets: readonly number[]; readonly count: number };
}

/** What RegistryMetrics counted so far. */
export interface RegistryCounters {
  /** Route → counts by status class (1xx…5xx), methods summed. */
  readonly requests: ReadonlyMap<RouteLabel, readonly number[]>;
  readonly bytesIn: ReadonlyMap<RouteLabel, number>;
  readonly bytesOut: ReadonlyMap<RouteLabel, number>;
  readonly azure: ReadonlyMap<string, AzureCounters>;
  readonly cache: CacheCounters | null;
  readonly uploads: { readonly sessions: number; readonly requests: number };
}

interface SocketCount {
  read: number;
  written: number;
}

export class RegistryMetrics {
  /** `route method class` → count. */
  readonly #requests = new Map<string, number>();
  readonly #durations = new Map<RouteLabel, Histogram>();
  readonly #bytesIn = new Map<RouteLabel, number>();
  readonly #bytesOut = new Map<RouteLabel, number>();
  readonly #counted = new WeakMap<Socket, SocketCount>();
  /** `operation outcome` → count. */
  readonly #azure = new Map<string, number>();
  readonly #azureLatency = new Map<string, Histogram>();
  #uploadRequests = 0;
  /** Set by the wiring when there is a node cache / upload spool to report. */
  cache: (() => CacheCounters) | null = null;
  uploadSessions: (() => number) | null = null;

  /** A request arrived; `ended` is called when its response closes. */
  started(req: IncomingMessage): void {
    if (req.method !== 'GET' && req.method !== 'HEAD' && routeLabel(req.url ?? '/') === 'upload') this.#uploadRequests++;
  }

  ended(req: IncomingMessage, res: ServerResponse, seconds: number): void {
    const route = routeLabel(req.url ?? '/');
    if (req.method !== 'GET' && req.method !== 'HEAD' && route === 'upload') this.#uploadRequests--;
    const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
    const key = `${route} ${method} ${CLASSES[Math.min(4, Math.max(0, Math.floor(res.statusCode / 100) - 1))]}`;
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    histogramOf(this.#durations, route).observe(seconds);
    const socket = req.socket;
    const seen = this.#counted.get(socket) ?? { read: 0, written: 0 };
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    this.#bytesIn.set(route, (this.#bytesIn.get(route) ?? 0) + Math.max(0, read - seen.read));
    this.#bytesOut.set(route, (this.#bytesOut.get(route) ?? 0) + Math.max(0, written - seen.written));
    seen.read = read;
    seen.written = written;
    this.#counted.set(socket, seen);
  }

  /** One Azure request (retries included) finished, by operation: ok, not_found or error. */
  azureOperation(operation: string, outcome: 'ok' | 'not_found' | 'error', seconds: number): void {
    const key = `${operation} ${outcome}`;
    this.#azure.set(key, (this.#azure.get(key) ?? 0) + 1);
    histogramOf(this.#azureLatency, operation).observe(seconds);
  }

  /** The counters as they are now, for the dashboard (which takes rates over them). */
  snapshot(): RegistryCounters {
    const requests = new Map<RouteLabel, number[]>();
    for (const [key, count] of this.#requests) {
      const [route, , codeClass] = key.split(' ') as [RouteLabel, string, (typeof CLASSES)[number]];
      const counts = requests.get(route) ?? [0, 0, 0, 0, 0];
      counts[CLASSES.indexOf(codeClass)] += count;
      requests.set(route, counts);
    }
    const azure = new Map<string, AzureCounters>();
    for (const [operation, latency] of this.#azureLatency) {
      const count = (outcome: string) => this.#azure.get(`${operation} ${outcome}`) ?? 0;
      azure.set(operation, { ok: count('ok'), notFound: count('not_found'), error: count('error'), latency: { buckets: [...latency.buckets], count: latency.count } });
    }
    return {
      requests,
      bytesIn: new Map(this.#bytesIn),
      bytesOut: new Map(this.#bytesOut),
      azure,
      cache: this.cache?.() ?? null,
      uploads: { sessions: this.uploadSessions?.() ?? 0, requests: this.#uploadRequests },
    };
  }

  render(): string {
    const out = new Exposition();
    out.family('tug_registry_requests_total', 'counter', 'Requests answered, by route (base, catalog, tag, manifest, upload, blob, referrers, other), method and status class.');
    for (const [key, count] of sorted(this.#requests)) {
      const [route, method, codeClass] = key.split(' ');
      out.sample('tug_registry_requests_total', { route, method, code_class: codeClass }, count);
    }
    out.family('tug_registry_request_duration_seconds', 'histogram', 'Time from a request head to the end of its response, by route.');
    for (const [route, h] of sorted(this.#durations)) out.histogram('tug_registry_request_duration_seconds', { route }, LATENCY_BUCKETS, h.buckets, h.sum, h.count);
    out.family('tug_registry_received_bytes_total', 'counter', 'Bytes received from clients (headers and bodies), by route.');
    for (const [route, bytes] of sorted(this.#bytesIn)) out.sample('tug_registry_received_bytes_total', { route }, bytes);
    out.family('tug_registry_sent_bytes_total', 'counter', 'Bytes sent to clients (headers and bodies), by route.');
    for (const [route, bytes] of sorted(this.#bytesOut)) out.sample('tug_registry_sent_bytes_total', { route }, bytes);

    out.family('tug_registry_uploads_in_progress', 'gauge', 'Uploads in progress: chunked upload sessions open on this node (session), upload requests streaming now (request).');
    out.sample('tug_registry_uploads_in_progress', { kind: 'session' }, this.uploadSessions?.() ?? 0);
    out.sample('tug_registry_uploads_in_progress', { kind: 'request' }, this.#uploadRequests);

    out.family('tug_registry_azure_operations_total', 'counter', 'Azure Blob Storage requests (the SDK\'s retries included), by operation and outcome (ok, not_found, error).');
    for (const [key, count] of sorted(this.#azure)) {
      const [operation, outcome] = key.split(' ');
      out.sample('tug_registry_azure_operations_total', { operation, outcome }, count);
    }
    out.family('tug_registry_azure_operation_duration_seconds', 'histogram', 'Azure Blob Storage request latency until the response head (a download\'s body streams after), by operation.');
    for (const [operation, h] of sorted(this.#azureLatency)) out.histogram('tug_registry_azure_operation_duration_seconds', { operation }, LATENCY_BUCKETS, h.buckets, h.sum, h.count);

    const cache = this.cache?.();
    if (cache) {
      out.family('tug_registry_cache_hits_total', 'counter', 'Blob and manifest reads served from the node cache.');
      out.sample('tug_registry_cache_hits_total', {}, cache.hits);
      out.family('tug_registry_cache_misses_total', 'counter', 'Blob and manifest reads the node cache did not hold (read from Azure).');
      out.sample('tug_registry_cache_misses_total', {}, cache.misses);
      out.family('tug_registry_cache_fills_total', 'counter', 'Blobs copied from Azure into the node cache.');
      out.sample('tug_registry_cache_fills_total', {}, cache.fills);
      out.family('tug_registry_cache_evictions_total', 'counter', 'Blobs evicted from the node cache to keep it within --cache-size.');
      out.sample('tug_registry_cache_evictions_total', {}, cache.evictions);
      out.family('tug_registry_cache_bytes', 'gauge', 'Bytes held in the node cache.');
      out.sample('tug_registry_cache_bytes', {}, cache.bytes);
      out.family('tug_registry_cache_entries', 'gauge', 'Blobs held in the node cache.');
      out.sample('tug_registry_cache_entries', {}, cache.entries);
    }
    return out.text();
  }
}

function histogramOf<K>(map: Map<K, Histogram>, key: K): Histogram {
  let h = map.get(key);
  if (!h) {
    h = new Histogram();
    map.set(key, h);
  }
  return h;
}

function sorted<K extends string, V>(map: Map<K, V>): [K, V][] {
  return [...map].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}
