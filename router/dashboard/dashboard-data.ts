// What the dashboard shows (GET /dashboard.json on the admin listener), built by
// the primary from what it already has: its copy of the table, the workers'
// metrics summed as for /metrics (ejections, in-flight requests, request
// counters), the etcd sync state and the certificates it checked. Pure: the
// caller gathers the inputs, so one scrape of the workers serves one build.
import type { MergedMetrics } from '../metrics/metrics-aggregator.ts';
import { pairKey } from '../metrics/metrics-aggregator.ts';
import type { CertificateInfo } from '../metrics/metrics-exposition.ts';
import { requestRate, type CounterWindow } from '../../common/dashboard/counter-rates.ts';
import type { ServiceView as TableServiceView } from '../table/table-view.ts';

export interface DashboardInput {
  readonly now: number;
  readonly router: { readonly node: string; readonly version: string; readonly startedAt: number; readonly ready: boolean; readonly draining: boolean; readonly admin: string };
  readonly etcd: { readonly endpoints: readonly string[]; readonly prefix: string; readonly synced: boolean; readonly connected: boolean; readonly revision: number; readonly lastContact: number };
  readonly workers: { readonly configured: number; readonly processes: readonly { readonly pid: number; readonly listening: boolean }[] };
  /** The primary's table: each service with its instances. */
  readonly services: Iterable<TableServiceView>;
  /** Rules as the admin listener shows them (TableView.ruleView: no password hashes). */
  readonly routes: Iterable<{ readonly name: string; readonly rule: object }>;
  readonly certificates: readonly CertificateInfo[];
  readonly metrics: MergedMetrics;
  /** Over the router's request counters (by pairKey, counts by status class). */
  readonly rates: CounterWindow;
}

export interface InstanceView {
  readonly instance: string;
  readonly address: string;
  readonly weight: number;
  readonly state: 'healthy' | 'ejected';
  /** ISO 8601 end of the current ejection (the latest over the workers), or null. */
  readonly ejectedUntil: string | null;
  readonly ejections: number;
  readonly inFlight: number;
  readonly rps: number | null;
  readonly errorShare: number | null;
}

export interface ServiceView {
  readonly name: string;
  readonly instances: readonly InstanceView[];
  readonly requests: number;
  /** Over every answer of the service, those no backend gave (503 without a live backend) included. */
  readonly rps: number | null;
  readonly errorShare: number | null;
}

export interface DashboardData {
  readonly generatedAt: string;
  readonly router: Omit<DashboardInput['router'], 'startedAt'> & { readonly startedAt: string; readonly uptimeSeconds: number };
  readonly etcd: { readonly endpoints: readonly string[]; readonly prefix: string; readonly synced: boolean; readonly connected: boolean; readonly revision: number; readonly secondsSinceContact: number | null };
  readonly workers: { readonly configured: number; readonly listening: number; readonly processes: readonly { readonly pid: number; readonly listening: boolean }[] };
  readonly services: readonly ServiceView[];
  /** Each rule as TableView.ruleView shows it, with its name. */
  readonly routes: readonly ({ readonly name: string } & object)[];
  readonly certificates: readonly { readonly name: string; readonly source: string; readonly hosts: readonly string[]; readonly notAfter: string; readonly daysLeft: number }[];
}

export function buildDashboard(input: DashboardInput): DashboardData {
  const { now, metrics, rates } = input;
  const services: ServiceView[] = [];
  for (const pool of input.services) {
    const instances = pool.instances.map((entry): InstanceView => {
      const address = entry.address;
      const state = metrics.backends.get(pairKey(pool.name, address));
      const ejected = state !== undefined && state.ejected > 0 && state.ejectedUntil > now;
      const rate = requestRate(rates, [pairKey(pool.name, address)]);
      return {
        instance: entry.instance,
        address,
        weight: entry.weight,
        state: ejected ? 'ejected' : 'healthy',
        ejectedUntil: ejected ? new Date(state.ejectedUntil).toISOString() : null,
        ejections: state?.ejections ?? 0,
        inFlight: state?.active ?? 0,
        rps: rate?.rps ?? null,
        errorShare: rate?.errorShare ?? null,
      };
    });
    const addresses = ['', ...new Set(instances.map((i) => i.address))];
    const rate = requestRate(rates, addresses.map((a) => pairKey(pool.name, a)));
    const requests = addresses.reduce((sum, a) => sum + (metrics.requests.get(pairKey(pool.name, a))?.reduce((x, y) => x + y, 0) ?? 0), 0);
    services.push({ name: pool.name, instances, requests, rps: rate?.rps ?? null, errorShare: rate?.errorShare ?? null });
  }
  services.sort((a, b) => a.name.localeCompare(b.name));
  const etcd = input.etcd;
  return {
    generatedAt: new Date(now).toISOString(),
    router: { ...input.router, startedAt: new Date(input.router.startedAt).toISOString(), uptimeSeconds: Math.round((now - input.router.startedAt) / 1000) },
    etcd: {
      endpoints: etcd.endpoints,
      prefix: etcd.prefix,
      synced: etcd.synced,
      connected: etcd.connected,
      revision: etcd.revision,
      secondsSinceContact: etcd.lastContact === 0 ? null : Math.round((now - etcd.lastContact) / 100) / 10,
    },
    workers: { configured: input.workers.configured, listening: input.workers.processes.filter((p) => p.listening).length, processes: input.workers.processes },
    services,
    routes: [...input.routes].map(({ name, rule }) => ({ name, ...rule })).sort((a, b) => a.name.localeCompare(b.name)),
    certificates: input.certificates
      .map((c) => ({ name: c.name, source: c.source, hosts: c.hosts, notAfter: new Date(c.notAfter).toISOString(), daysLeft: Math.floor((c.notAfter - now) / 86_400_000) }))
      .sort((a, b) => a.notAfter.localeCompare(b.notAfter)),
  };
}
