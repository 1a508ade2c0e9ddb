// Reads and writes a route's split between services in etcd (`/routes/<name>`):
// the rule's other fields are kept as written, the new rule is checked by the
// routers' own parser before it is put, and the put is a compare-and-swap on the
// rule's revision, so an operator's concurrent edit is never overwritten.
// One put changes the split atomically on every router.
import type { Etcd3 } from 'etcd3';
import { configError, ErrorCodes, TugError } from '../common/errors.ts';
import { parseRouteRule, RouteKeys, type WeightedService } from '../router/etcd/route-keys.ts';

export interface StoredRoute {
  readonly key: string;
  /** The rule as stored (raw JSON object), to restore or edit. */
  readonly raw: Record<string, unknown>;
  readonly services: readonly WeightedService[];
  readonly modRevision: string;
}

export async function readRoute(etcd: Etcd3, etcdPrefix: string, name: string): Promise<StoredRoute> {
  if (!/^[^/\s]{1,128}$/.test(name)) throw configError(`${JSON.stringify(name)} is not a route name`);
  const key = `${new RouteKeys(etcdPrefix).routesPrefix}${name}`;
  const response = await etcd.get(key).exec();
  const kv = response.kvs[0];
  if (kv === undefined) throw new TugError(ErrorCodes.ETCD_VALUE_INVALID, `${key}: no such route`);
  const text = kv.value.toString();
  const rule = parseRouteRule(text);
  if (typeof rule === 'string') throw new TugError(ErrorCodes.ETCD_VALUE_INVALID, `${key}: ${rule}`);
  return { key, raw: JSON.parse(text) as Record<string, unknown>, services: rule.services, modRevision: kv.mod_revision };
}

/** The rule with its services replaced (one service of any weight is written as `"service"`). */
export function withServices(raw: Record<string, unknown>, services: readonly WeightedService[]): Record<string, unknown> {
  const { service: _service, services: _services, ...rest } = raw;
  const live = services.filter((s) => s.weight > 0);
  return live.length === 1 ? { service: live[0].service, ...rest } : { services, ...rest };
}

/** Puts `rule` at the route's key if nobody changed it since `route` was read; returns the new stored route. */
export async function writeRoute(etcd: Etcd3, route: StoredRoute, rule: Record<string, unknown>): Promise<StoredRoute> {
  const text = JSON.stringify(rule);
  const parsed = parseRouteRule(text);
  if (typeof parsed === 'string') throw configError(`the new rule for ${route.key} would be refused by the routers: ${parsed}`);
  const result = await etcd.if(route.key, 'Mod', '==', route.modRevision).then(etcd.put(route.key).value(text)).commit();
  if (!result.succeeded) throw new TugError(ErrorCodes.ETCD_VALUE_INVALID, `${route.key} changed while this command ran; nothing was overwritten`);
  return { key: route.key, raw: rule, services: parsed.services, modRevision: result.header.revision };
}

export function describeSplit(services: readonly WeightedService[]): string {
  const total = services.reduce((sum, s) => sum + s.weight, 0);
  return services.map((s) => `${s.service} ${Math.round((s.weight / total) * 1000) / 10}%`).join(', ');
}
