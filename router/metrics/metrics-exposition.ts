// The router's /metrics: what the primary and its workers know, in the
// Prometheus text format (common/prometheus-text.ts writes it); the output
// passes `promtool check metrics` (test/router/metrics.test.ts).
//
// Per-backend series exist while the backend is in its service's pool: a
// removed backend's series end (as a scrape target's do), while service totals
// (the latency histogram) keep counting.
import { Exposition } from '../../common/prometheus-text.ts';
import type { MergedMetrics } from './metrics-aggregator.ts';
import { pairKey } from './metrics-aggregator.ts';
import { DURATION_BUCKETS } from './service-metrics.ts';

export interface CertificateInfo {
  readonly name: string;
  readonly source: 'etcd' | 'file';
  readonly hosts: readonly string[];
  readonly notAfter: number;
}

/** What the primary itself knows. */
export interface PrimaryState {
  readonly etcd: { synced: boolean; connected: boolean; revision: number; lastContact: number };
  readonly workers: { configured: number; listening: number };
  /** Each service's current backend addresses (distinct), from the primary's table. */
  readonly services: ReadonlyMap<string, readonly string[]>;
  readonly certificates: readonly CertificateInfo[];
}

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'];

export function renderMetrics(metrics: MergedMetrics, state: PrimaryState, now = Date.now()): string {
  const out = new Exposition();

  out.family('tug_requests_total', 'counter', 'Requests answered, by service, backend and status class; backend is empty when none answered (no live backend, a redirect).');
  for (const [service, backends] of state.services) {
    for (const backend of ['', ...backends]) {
      const counts = metrics.requests.get(pairKey(service, backend));
      if (counts === undefined) continue;
      for (let i = 0; i < CLASSES.length; i++) out.sample('tug_requests_total', { service, backend, code_class: CLASSES[i] }, counts[i]);
    }
  }

  out.family('tug_request_duration_seconds', 'histogram', 'Time from a request head to the end of its response (WebSocket upgrades excluded), by service.');
  for (const service of state.services.keys()) {
    const histogram = metrics.durations.get(service);
    if (histogram === undefined) continue;
    out.histogram('tug_request_duration_seconds', { service }, DURATION_BUCKETS, histogram.buckets, histogram.sum, histogram.count);
  }

  out.family('tug_unrouted_requests_total', 'counter', 'Requests refused before a route was chosen (400 malformed, 404 no route, 408, 431, 501, 505), by status.');
  for (const [code, count] of [...metrics.unrouted].sort((a, b) => a[0] - b[0])) out.sample('tug_unrouted_requests_total', { code: String(code) }, count);

  out.family('tug_active_connections', 'gauge', 'Open client connections, by listener.');
  out.sample('tug_active_connections', { listener: 'http' }, metrics.connections.http);
  out.sample('tug_active_connections', { listener: 'https' }, metrics.connections.https);
  out.family('tug_active_websockets', 'gauge', 'Open WebSockets through the router.');
  out.sample('tug_active_websockets', {}, metrics.websockets);
  out.family('tug_websockets_total', 'counter', 'WebSockets opened (101 from the backend).');
  out.sample('tug_websockets_total', {}, metrics.websocketsTotal);
  out.family('tug_mirror_requests_total', 'counter', 'Copies of requests sent to routes\' mirror services, by outcome: answered, failed (no answer: refused, reset, timed out), skipped (no backend, or too many copies in flight).');
  for (const [i, outcome] of ['answered', 'failed', 'skipped'].entries()) out.sample('tug_mirror_requests_total', { outcome }, metrics.mirrors[i]);
  out.family('tug_tls_handshake_errors_total', 'counter', 'TLS handshakes that failed (protocol, cipher, unknown name without a default certificate, client gave up).');
  out.sample('tug_tls_handshake_errors_total', {}, metrics.tlsHandshakeErrors);

  out.family('tug_service_backends', 'gauge', 'Backends (distinct addresses) announced for a service.');
  for (const [service, backends] of state.services) out.sample('tug_service_backends', { service }, backends.length);
  const backendFamilies = [
    ['tug_backend_ejected', 'gauge', 'Whether passive health checks eject the backend now (1 if any worker does).', (s: { ejected: number }) => s.ejected],
    ['tug_backend_ejections_total', 'counter', 'Times the backend was ejected after consecutive failures.', (s: { ejections: number }) => s.ejections],
    ['tug_backend_active_requests', 'gauge', 'Requests and WebSockets in flight to the backend.', (s: { active: number }) => s.active],
  ] as const;
  for (const [name, type, help, value] of backendFamilies) {
    out.family(name, type, help);
    for (const [service, backends] of state.services) {
      for (const backend of backends) {
        const backendState = metrics.backends.get(pairKey(service, backend)) ?? { ejected: 0, ejections: 0, active: 0 };
        out.sample(name, { service, backend }, value(backendState));
      }
    }
  }

  const etcd = state.etcd;
  out.family('tug_etcd_connected', 'gauge', 'Whether etcd answers and the watches are attached.');
  out.sample('tug_etcd_connected', {}, etcd.connected ? 1 : 0);
  out.family('tug_etcd_synced', 'gauge', 'Whether the first etcd snapshot has been applied.');
  out.sample('tug_etcd_synced', {}, etcd.synced ? 1 : 0);
  out.family('tug_etcd_revision', 'gauge', 'Highest etcd revision applied to the table.');
  out.sample('tug_etcd_revision', {}, etcd.revision);
  out.family('tug_etcd_seconds_since_contact', 'gauge', 'Seconds since etcd last answered (+Inf before the first answer): how stale the table may be.');
  out.sample('tug_etcd_seconds_since_contact', {}, etcd.lastContact === 0 ? Infinity : Math.max(0, now - etcd.lastContact) / 1000);

  out.family('tug_certificates_loaded', 'gauge', 'TLS certificates the HTTPS listener serves.');
  out.sample('tug_certificates_loaded', {}, state.certificates.length);
  out.family('tug_certificate_expiry_timestamp_seconds', 'gauge', 'When each served certificate expires (notAfter, Unix seconds), by name (etcd /tls/<name> or file path), source and hosts.');
  for (const cert of state.certificates) {
    out.sample('tug_certificate_expiry_timestamp_seconds', { name: cert.name, source: cert.source, hosts: cert.hosts.join(',') }, Math.floor(cert.notAfter / 1000));
  }

  out.family('tug_workers', 'gauge', 'Proxy worker processes, by state.');
  out.sample('tug_workers', { state: 'configured' }, state.workers.configured);
  out.sample('tug_workers', { state: 'listening' }, state.workers.listening);
  return out.text();
}
