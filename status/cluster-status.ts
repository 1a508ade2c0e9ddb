// The cluster as etcd alone sees it, for `tug status` and the dashboard's cluster
// view: every router's record against etcd's revision, every service with its
// instances, the routes, the certificates under /tls/ with their expiry, and the
// shared basicAuth user lists under /auth/ (user counts, and the routes referring
// to each). One read (a transaction over the five prefixes, so everything is of one revision).
//
// Staleness: a router is `behind` when the revision it has applied is older than
// the newest change under /services/, /routes/, /tls/ and /auth/ (the highest mod
// revision there: `tableRevision`), and `stale` when it is behind and has not
// rewritten its record for STALE_AFTER ms. A router applies a change within
// milliseconds and rewrites its record within a second, so `behind` alone is
// normal for a moment after a change; `tug status` reads again before it calls
// a router stale. A deleted key leaves no mod revision behind, so a router that
// missed only deletions is not seen as behind.
import { X509Certificate } from 'node:crypto';
import { Range, type Etcd3 } from 'etcd3';
import { RouteKeys, type BackendSpec, type RouteRule } from '../router/etcd/route-keys.ts';
import { parseRouterRecord, routersPrefix, type RouterRecord } from '../router/process/router-record.ts';
import { certificateHosts } from '../router/tls/tls-certificate.ts';
import { withoutHashes } from '../router/middleware/middleware-spec.ts';

/** A router behind the table for longer than this (by its record's age) is stale. */
export const STALE_AFTER = 5000;
/** Certificates expiring within this many days are listed as expiring. */
export const EXPIRY_WARNING_DAYS = 21;
const DAY = 86_400_000;

export type RouterSyncState = 'in sync' | 'behind' | 'stale';

export interface RouterStatus extends RouterRecord {
  readonly sync: RouterSyncState;
  /** ms since the router last wrote its record (by this machine's clock). */
  readonly age: number;
}

export interface CertificateStatus {
  readonly name: string;
  readonly hosts: readonly string[];
  /** ISO 8601, or null when the value does not hold a readable certificate. */
  readonly notAfter: string | null;
  readonly daysLeft: number | null;
  readonly expiring: boolean;
  readonly error?: string;
}

export interface ClusterStatus {
  readonly readAt: string;
  /** etcd's current revision. */
  readonly revision: number;
  /** The newest change under /services/, /routes/, /tls/ and /auth/. */
  readonly tableRevision: number;
  readonly routers: readonly RouterStatus[];
  readonly services: readonly { readonly name: string; readonly instances: readonly ({ readonly instance: string } & BackendSpec)[] }[];
  readonly routes: readonly ({ readonly name: string } & RouteRule)[];
  readonly certificates: readonly CertificateStatus[];
  /**
   * Shared user lists: every list under /auth/ with a valid value and every name a route's basicAuth
   * refers to; `userCount` null when it has no valid value (those routes refuse every request).
   */
  readonly userLists: readonly { readonly name: string; readonly userCount: number | null; readonly routes: readonly string[] }[];
  /** Keys whose values Tug cannot use (a router skips them too), with the reason. */
  readonly invalid: readonly { readonly key: string; readonly error: string }[];
}

export async function readClusterStatus(client: Etcd3, etcdPrefix: string, now = Date.now(), timeout = 5000): Promise<ClusterStatus> {
  const keys = new RouteKeys(etcdPrefix);
  const routers = routersPrefix(etcdPrefix);
  const prefixes = [routers, keys.servicesPrefix, keys.routesPrefix, keys.tlsPrefix, keys.authPrefix];
  const result = await client.kv.txn({
    success: prefixes.map((prefix) => {
      const range = Range.prefix(prefix);
      return { request_range: { key: range.start, range_end: range.end } };
    }),
  }, { deadline: Date.now() + timeout });
  const [routerKvs, ...tableRanges] = result.responses.map((r) => r.response_range?.kvs ?? []);
  const tableKvs = tableRanges.flat();
  const tableRevision = tableKvs.reduce((max, kv) => Math.max(max, Number(kv.mod_revision)), 0);

  const invalid: { key: string; error: string }[] = [];
  const routerList: RouterStatus[] = [];
  for (const kv of routerKvs) {
    const record = parseRouterRecord(kv.value.toString());
    if (typeof record === 'string') {
      invalid.push({ key: kv.key.toString(), error: record });
      continue;
    }
    const age = Math.max(0, now - Date.parse(record.updatedAt));
    const behind = record.revision < tableRevision;
    routerList.push({ ...record, age, sync: !behind ? 'in sync' : age > STALE_AFTER ? 'stale' : 'behind' });
  }

  const services = new Map<string, ({ instance: string } & BackendSpec)[]>();
  const routes: ({ name: string } & RouteRule)[] = [];
  const certificates: CertificateStatus[] = [];
  const userLists = new Map<string, { userCount: number | null; routes: string[] }>();
  const userList = (name: string) => userLists.get(name) ?? userLists.set(name, { userCount: null, routes: [] }).get(name)!;
  for (const kv of tableKvs) {
    const key = kv.key.toString();
    const value = kv.value.toString();
    if (key.startsWith(keys.tlsPrefix)) {
      certificates.push(certificateStatus(key.slice(keys.tlsPrefix.length), value, now));
      continue;
    }
    const parsed = keys.parse(key, value);
    if (!parsed.ok) {
      if (parsed.error !== null) invalid.push({ key, error: parsed.error.message });
      continue;
    }
    const change = parsed.change;
    if (change.kind === 'backend' && change.spec !== null) {
      const list = services.get(change.service) ?? [];
      list.push({ instance: change.instance, ...change.spec });
      services.set(change.service, list);
    } else if (change.kind === 'route' && change.rule !== null) {
      // The cluster view is also served on routers' admin listeners: never a password hash.
      routes.push({ name: change.name, ...change.rule, middlewares: change.rule.middlewares === null ? null : withoutHashes(change.rule.middlewares) });
      const usersKey = change.rule.middlewares?.basicAuth?.usersKey;
      if (usersKey !== undefined && usersKey !== null) userList(usersKey).routes.push(change.name);
    } else if (change.kind === 'user-list' && change.users !== null) {
      userList(change.name).userCount = change.count;
    }
  }
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  return {
    readAt: new Date(now).toISOString(),
    revision: Number(result.header.revision),
    tableRevision,
    routers: routerList.sort((a, b) => a.node.localeCompare(b.node)),
    services: [...services].map(([name, instances]) => ({ name, instances })).sort(byName),
    routes: routes.sort(byName),
    certificates: certificates.sort((a, b) => (a.daysLeft ?? -Infinity) - (b.daysLeft ?? -Infinity) || a.name.localeCompare(b.name)),
    userLists: [...userLists].map(([name, list]) => ({ name, userCount: list.userCount, routes: list.routes.sort() })).sort(byName),
    invalid,
  };
}

/** The leaf's names and expiry; an expired or unparsable value is listed too (a router refuses it). */
function certificateStatus(name: string, value: string, now: number): CertificateStatus {
  try {
    const pem = (JSON.parse(value) as { cert?: unknown }).cert;
    const leafPem = typeof pem === 'string' ? /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/.exec(pem)?.[0] : undefined;
    if (leafPem === undefined) throw new Error('no PEM certificate under "cert"');
    const leaf = new X509Certificate(leafPem);
    const notAfter = leaf.validToDate.getTime();
    const daysLeft = Math.floor((notAfter - now) / DAY);
    return { name, hosts: certificateHosts(leaf), notAfter: leaf.validToDate.toISOString(), daysLeft, expiring: notAfter - now < EXPIRY_WARNING_DAYS * DAY };
  } catch (err) {
    return { name, hosts: [], notAfter: null, daysLeft: null, expiring: false, error: (err as Error).message };
  }
}
