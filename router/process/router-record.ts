// What a router says about itself in etcd, at <prefix>/routers/<node>, on a
// lease (router-registration.ts writes it, `tug status` and the dashboard's
// cluster view read it):
//
//   {"node": "fleet-3", "version": "0.1.0", "pid": 1234,
//    "addresses": {"http": "0.0.0.0:80", "https": "0.0.0.0:443", "admin": "127.0.0.1:9090"},
//    "revision": 1180,          the etcd revision its table has applied
//    "healthy": true,           /healthz is 200 and etcd answers
//    "startedAt": "…", "updatedAt": "…"}   ISO 8601
//
// The router never watches /routers/, so writing its record never changes its own table.

export interface RouterRecord {
  readonly node: string;
  readonly version: string;
  readonly pid: number;
  readonly addresses: { readonly http: string; readonly https: string | null; readonly admin: string };
  readonly revision: number;
  readonly healthy: boolean;
  readonly startedAt: string;
  readonly updatedAt: string;
}

export function routersPrefix(etcdPrefix: string): string {
  return `${etcdPrefix.replace(/\/+$/, '')}/routers/`;
}

/** A record read back from etcd, or a reason it is unusable (a hand-written or foreign value). */
export function parseRouterRecord(raw: string): RouterRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return 'not JSON';
  }
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  const addresses = r.addresses as Record<string, unknown> | undefined;
  if (typeof r.node !== 'string' || typeof r.revision !== 'number' || typeof r.healthy !== 'boolean'
    || typeof r.updatedAt !== 'string' || Number.isNaN(Date.parse(r.updatedAt)) || typeof addresses !== 'object' || addresses === null) {
    return 'expected {node, version, addresses, revision, healthy, startedAt, updatedAt}';
  }
  return {
    node: r.node,
    version: typeof r.version === 'string' ? r.version : '',
    pid: typeof r.pid === 'number' ? r.pid : 0,
    addresses: {
      http: String(addresses.http ?? ''),
      https: typeof addresses.https === 'string' ? addresses.https : null,
      admin: String(addresses.admin ?? ''),
    },
    revision: r.revision,
    healthy: r.healthy,
    startedAt: typeof r.startedAt === 'string' ? r.startedAt : '',
    updatedAt: r.updatedAt,
  };
}
