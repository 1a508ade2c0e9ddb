// `tug deploy canary <route> --to <service>`: moves a route's traffic to a new
// service in steps (its share 10%, 25%, 50%, 100% by default), each held for
// --interval while the routers' /metrics are read; when the new service's 5xx
// share in a step exceeds --max-error-rate (once it answered --min-requests),
// the route's previous rule is put back and the canary stops. Each step is one
// compare-and-swap put of the rule, so every router switches atomically.
import type { Etcd3 } from 'etcd3';
import type { WeightedService } from '../router/etcd/route-keys.ts';
import type { CanaryConfig } from './traffic-config.ts';
import { readServiceCounts } from './router-metrics.ts';
import { describeSplit, readRoute, withServices, writeRoute, type StoredRoute } from './route-split.ts';

export type CanaryOutcome =
  | { readonly kind: 'completed' }
  | { readonly kind: 'rolled-back'; readonly reason: string }
  | { readonly kind: 'rollback-failed'; readonly reason: string; readonly rollbackError: string };

/** The split at `percent` for the new service; the others keep their proportions in the rest. */
export function stepSplit(previous: readonly WeightedService[], to: string, percent: number): WeightedService[] {
  const others = previous.filter((s) => s.service !== to && s.weight > 0);
  const othersTotal = others.reduce((sum, s) => sum + s.weight, 0);
  const rest = 100 - percent;
  const split = others.map((s) => ({ service: s.service, weight: Math.round((s.weight / othersTotal) * rest) }));
  return [...split.filter((s) => s.weight > 0), { service: to, weight: percent }];
}

export async function runCanary(etcd: Etcd3, etcdPrefix: string, routeName: string, routers: readonly string[], config: CanaryConfig, print: (line: string) => void): Promise<CanaryOutcome> {
  const original = await readRoute(etcd, etcdPrefix, routeName);
  if (original.services.every((s) => s.service === config.to)) {
    print(`canary ${routeName}: already all on ${config.to}`);
    return { kind: 'completed' };
  }
  let current: StoredRoute = original;
  for (const [i, percent] of config.steps.entries()) {
    const split = stepSplit(original.services, config.to, percent);
    current = await writeRoute(etcd, current, withServices(original.raw, split));
    print(`canary ${routeName}: [${i + 1}/${config.steps.length}] ${describeSplit(split)}`);
    const failure = await watchStep(routers, config);
    if (failure !== null) {
      print(`canary ${routeName}: ${failure}; restoring ${describeSplit(original.services)}`);
      try {
        await writeRoute(etcd, current, original.raw);
      } catch (err) {
        return { kind: 'rollback-failed', reason: failure, rollbackError: (err as Error).message };
      }
      return { kind: 'rolled-back', reason: failure };
    }
  }
  print(`canary ${routeName}: done, ${describeSplit(current.services)}`);
  return { kind: 'completed' };
}

/** Holds a step for the interval; returns why it failed, or null. */
async function watchStep(routers: readonly string[], config: CanaryConfig): Promise<string | null> {
  const timeout = Math.max(500, Math.min(5000, config.pollInterval));
  const base = await readServiceCounts(routers, config.to, timeout);
  // Blind is not healthy: a step nobody can watch is not taken as a success.
  if (base.unreachable.length === routers.length) return `no router's /metrics could be read (${routers.join(', ')})`;
  const end = Date.now() + config.interval;
  for (;;) {
    const left = end - Date.now();
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(config.pollInterval, left))));
    const now = await readServiceCounts(routers, config.to, timeout);
    const total = now.total - base.total;
    const errors = now.errors - base.errors;
    if (total >= config.minRequests && errors / total > config.maxErrorRate) {
      return `${config.to} answered ${errors} of ${total} requests with 5xx (${Math.round((errors / total) * 1000) / 10}% > ${config.maxErrorRate * 100}%)`;
    }
    if (Date.now() >= end) return null;
  }
}
