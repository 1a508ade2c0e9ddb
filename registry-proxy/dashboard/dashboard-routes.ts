// The registry's dashboard on its admin listener: the page and script
// (registry-proxy/dashboard/assets/, served with the shared stylesheet and
// helpers by common/dashboard/dashboard-pages.ts) and `/dashboard.json`, whose
// rates are taken over the registry's counters between polls.
import { CounterRates } from '../../common/dashboard/counter-rates.ts';
import { dashboardPages, type DashboardPages } from '../../common/dashboard/dashboard-pages.ts';
import { formatListenAddress } from '../../common/listen-address.ts';
import { TUG_VERSION } from '../../common/version.ts';
import type { RegistryConfig } from '../config.ts';
import type { RegistryMetrics } from '../registry-metrics.ts';
import { buildRegistryDashboard, counterTotals, type RegistryHealth } from './dashboard-data.ts';

export interface RegistryDashboardSource {
  readonly config: RegistryConfig;
  readonly metrics: RegistryMetrics;
  health(): RegistryHealth;
}

export function registryDashboard(source: RegistryDashboardSource): DashboardPages {
  const startedAt = Date.now();
  const rates = new CounterRates();
  const admin = source.config.admin === null ? 'off' : formatListenAddress(source.config.admin);
  return dashboardPages({
    assets: new URL('./assets/', import.meta.url),
    documents: {
      '/dashboard.json': async () => {
        const now = Date.now();
        const counters = source.metrics.snapshot();
        return buildRegistryDashboard({
          now,
          startedAt,
          version: TUG_VERSION,
          admin,
          config: source.config,
          health: source.health(),
          counters,
          window: rates.observe(counterTotals(counters), now),
        });
      },
    },
  });
}
