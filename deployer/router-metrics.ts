// Reads what the routers answered for one service, from their /metrics
// (`tug_requests_total{service,backend,code_class}`, summed over backends and
// routers): the canary's evidence. The routers are given as admin URLs, or found
// in etcd under /routers/<node> (their registered admin address; a wildcard
// address such as 0.0.0.0:9090 says nothing about where to reach the router, so
// those are skipped and named: pass --routers then).
import type { Etcd3 } from 'etcd3';
import { parseRouterRecord, routersPrefix } from '../router/process/router-record.ts';

export interface ServiceCounts {
  readonly total: number;
  readonly errors: number;
  /** Routers that could not be read this time (their counts are missing). */
  readonly unreachable: readonly string[];
}

const SAMPLE = /^tug_requests_total\{([^}]*)\} (\S+)$/;

/** Sums the service's answers (and its 5xx) over the routers' scrapes. */
export async function readServiceCounts(routers: readonly string[], service: string, timeout: number): Promise<ServiceCounts> {
  let total = 0;
  let errors = 0;
  const unreachable: string[] = [];
  await Promise.all(routers.map(async (url) => {
    try {
      const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeout) });
      if (!res.ok) throw new Error(`status ${res.status}`);
      for (const line of (await res.text()).split('\n')) {
        const match = SAMPLE.exec(line);
        if (match === null) continue;
        const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
        if (labels.service !== service) continue;
        const value = Number(match[2]);
        total += value;
        if (labels.code_class === '5xx') errors += value;
      }
    } catch {
      unreachable.push(url);
    }
  }));
  return { total, errors, unreachable };
}

/** The admin URLs of the routers registered in etcd, and the records that give no reachable address. */
export async function registeredRouters(etcd: Etcd3, etcdPrefix: string): Promise<{ urls: string[]; skipped: string[] }> {
  const records = await etcd.getAll().prefix(routersPrefix(etcdPrefix)).strings();
  const urls: string[] = [];
  const skipped: string[] = [];
  for (const [key, value] of Object.entries(records)) {
    const record = parseRouterRecord(value);
    if (typeof record === 'string') {
      skipped.push(key);
      continue;
    }
    const admin = record.addresses.admin;
    if (/^(?:0\.0\.0\.0|\[::\]|::|):/.test(admin) || admin === '') skipped.push(`${record.node} (${admin || 'no admin address'})`);
    else urls.push(`http://${admin}`);
  }
  return { urls: urls.sort(), skipped };
}
