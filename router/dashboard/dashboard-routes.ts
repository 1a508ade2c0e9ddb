// The router's dashboard on the admin listener: its page and script
// (router/dashboard/assets/, served with the shared stylesheet and helpers by
// common/dashboard/dashboard-pages.ts), `/dashboard.json` (this router) and
// `/cluster.json` (every router, from etcd, as `tug status` reads it).
import { dashboardPages, type DashboardPages } from '../../common/dashboard/dashboard-pages.ts';

export interface DashboardSource {
  dashboard(): Promise<object>;
  cluster(): Promise<object>;
}

export function routerDashboard(source: DashboardSource): DashboardPages {
  return dashboardPages({
    assets: new URL('./assets/', import.meta.url),
    documents: { '/dashboard.json': () => source.dashboard(), '/cluster.json': () => source.cluster() },
  });
}
