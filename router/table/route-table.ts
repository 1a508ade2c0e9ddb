// The live routing table: which route serves a (host, path), and each service's
// pool. Updated in place by `apply`, one event at a time, at a cost proportional
// to what changed (one service's instances, one host's prefixes), never to the
// size of the table. Requests read it synchronously, so they always see either
// the state before an event or after it.
//
// Resolution order for a request's host: exact host rules, then `*.domain`
// rules, then `<service>.<--domain>`, then rules without hosts. Within a host,
// the longest path prefix wins (matched on segment boundaries).
import { ChallengeStore } from '../acme/challenge-store.ts';
import type { Backend } from './backend.ts';
import type { BackendRegistry } from './backend-registry.ts';
import { balancers, type SelectBackend } from './balancers/index.ts';
import { hstsHeaderValue, type BackendSpec, type RouteRule, type TableChange } from '../etcd/route-keys.ts';
import { ServicePool } from './service-pool.ts';
import { RouteMiddlewares, type MiddlewareEnv } from '../middleware/route-middlewares.ts';
import { ServiceSplit } from './service-split.ts';
import { TrafficMirror } from './traffic-mirror.ts';

export interface Route {
  /** Rule name, or null for a `<service>.<domain>` route. */
  readonly name: string | null;
  /** The service (with a split: the first named; the record of a redirect goes to it). */
  readonly pool: ServicePool;
  /** A weighted split between services, or null: one service, `pool`. */
  readonly split: ServiceSplit | null;
  /** Sticky sessions: the cookie's name and Max-Age (seconds), or null. */
  readonly sticky: { readonly cookie: string; readonly ttl: number } | null;
  /** Copies of a share of the requests to another service, or null. */
  readonly mirror: TrafficMirror | null;
  readonly select: SelectBackend;
  readonly responseTimeout: number | undefined;
  readonly idleTimeout: number | undefined;
  /** Requests on the HTTP listener get a 308 to HTTPS instead of a backend. */
  readonly httpsRedirect: boolean;
  /** The Strict-Transport-Security value for HTTPS responses (built once per rule), or null. */
  readonly hsts: string | null;
  /** The rule's middlewares, compiled once per rule; null (the common case) costs a request nothing. */
  readonly middlewares: RouteMiddlewares | null;
}

interface PrefixEntry {
  readonly prefix: string;
  readonly route: Route;
}

const ANY_HOST = '';

export class RouteTable {
  readonly #registry: BackendRegistry;
  readonly #domainSuffix: string | null;
  readonly #services = new Map<string, ServicePool>();
  readonly #rules = new Map<string, { rule: RouteRule; route: Route }>();
  /** host (exact, `*.domain` or ANY_HOST) → prefixes sorted longest first. Arrays are replaced, not mutated. */
  readonly #hosts = new Map<string, readonly PrefixEntry[]>();
  readonly #domainRoutes = new Map<ServicePool, Route>();
  /** The cluster's pending HTTP-01 challenges (etcd /acme/challenges/), answered before any route. */
  readonly challenges = new ChallengeStore();
  /** The cluster's key for sticky-session cookies (etcd /cluster/sticky-key, from the primary); null until it arrives. */
  stickyKey: Buffer | null = null;

  readonly #middlewareEnv: MiddlewareEnv | null;

  /** `middlewareEnv`: what compiled middlewares share in this worker; null: middlewares are not compiled (tests of the table alone). */
  constructor(registry: BackendRegistry, domain: string | null, middlewareEnv: MiddlewareEnv | null = null) {
    this.#registry = registry;
    this.#middlewareEnv = middlewareEnv;
    this.#domainSuffix = domain ? `.${domain.toLowerCase()}` : null;
  }

  /** Applies backend, route, user-list and challenge changes; certificate changes belong to the TLS listener and are skipped. */
  apply(changes: readonly TableChange[]): void {
    for (const change of changes) {
      if (change.kind === 'backend') this.#applyBackend(change.service, change.instance, change.spec);
      else if (change.kind === 'route') this.#applyRoute(change.name, change.rule);
      else if (change.kind === 'user-list') this.#middlewareEnv?.userLists.set(change.name, change.users);
      else if (change.kind === 'challenge') this.challenges.set(change.token, change.keyAuthorization);
    }
  }

  /**
   * The route for a lowercase host without port and a normalised path starting with '/'. A host
   * named by an exact rule is owned by the rules: the `<service>.<domain>` mapping never serves it.
   */
  resolve(host: string, path: string): Route | null {
    const exact = this.#hosts.get(host);
    let route = exact === undefined ? null : matchPrefix(exact, path);
    if (route !== null) return route;
    const dot = host.indexOf('.');
    if (dot > 0) {
      const list = this.#hosts.get(`*${host.slice(dot)}`);
      route = list === undefined ? null : matchPrefix(list, path);
      if (route !== null) return route;
      const suffix = this.#domainSuffix;
      if (suffix !== null && exact === undefined && dot === host.length - suffix.length && host.endsWith(suffix)) {
        const pool = this.#services.get(host.slice(0, dot));
        if (pool !== undefined) return this.#domainRoute(pool);
      }
    }
    const any = this.#hosts.get(ANY_HOST);
    return any === undefined ? null : matchPrefix(any, path);
  }

  /** The primary's health verdicts: every address its active checks find failing. */
  setUnhealthy(addresses: ReadonlySet<string>): void {
    this.#registry.setUnhealthy(addresses);
  }

  service(name: string): ServicePool | undefined {
    return this.#services.get(name);
  }

  /** Every service's pool (for metrics snapshots). */
  pools(): IterableIterator<ServicePool> {
    return this.#services.values();
  }

  get serviceCount(): number {
    return this.#services.size;
  }

  #pool(name: string): ServicePool {
    let pool = this.#services.get(name);
    if (pool === undefined) {
      // Pools are kept when their last instance goes: a known service with no
      // backend answers 503, an unknown one 404 ("empty" is not "unknown").
      pool = new ServicePool(name);
      this.#services.set(name, pool);
    }
    return pool;
  }

  #applyBackend(service: string, instance: string, spec: BackendSpec | null): void {
    const pool = this.#pool(service);
    let previous: Backend | undefined;
    if (spec === null) {
      previous = pool.delete(instance);
    } else {
      // Acquire before release, so an unchanged address keeps its pool and health.
      previous = pool.set(instance, this.#registry.acquire(spec.host, spec.port), spec.weight);
    }
    if (previous !== undefined) this.#registry.release(previous);
  }

  #applyRoute(name: string, rule: RouteRule | null): void {
    const old = this.#rules.get(name);
    if (old !== undefined) {
      for (const host of hostKeys(old.rule)) {
        const remaining = (this.#hosts.get(host) ?? []).filter((e) => e.route !== old.route);
        if (remaining.length === 0) this.#hosts.delete(host);
        else this.#hosts.set(host, remaining);
      }
      this.#rules.delete(name);
    }
    if (rule === null) return;
    const route: Route = {
      name,
      pool: this.#pool(rule.services[0].service),
      split: rule.services.length === 1 ? null : new ServiceSplit(rule.services.map((s) => ({ pool: this.#pool(s.service), weight: s.weight }))),
      sticky: rule.sticky,
      mirror: rule.mirror === null ? null : new TrafficMirror(this.#pool(rule.mirror.service), rule.mirror.percent),
      select: balancers[rule.balance],
      responseTimeout: rule.timeouts.response,
      idleTimeout: rule.timeouts.idle,
      httpsRedirect: rule.httpsRedirect,
      hsts: rule.hsts === null ? null : hstsHeaderValue(rule.hsts),
      middlewares: rule.middlewares === null || this.#middlewareEnv === null ? null : new RouteMiddlewares(rule.middlewares, this.#middlewareEnv),
    };
    this.#rules.set(name, { rule, route });
    const added = rule.paths.map((prefix) => ({ prefix, route }));
    for (const host of hostKeys(rule)) {
      const entries = [...(this.#hosts.get(host) ?? []), ...added];
      // Longest prefix first; equal prefixes are ordered by rule name so the winner is deterministic.
      entries.sort((a, b) => b.prefix.length - a.prefix.length || compare(a.route.name, b.route.name));
      this.#hosts.set(host, entries);
    }
  }

  #domainRoute(pool: ServicePool): Route {
    let route = this.#domainRoutes.get(pool);
    if (route === undefined) {
      route = { name: null, pool, split: null, sticky: null, mirror: null, select: balancers['round-robin'], responseTimeout: undefined, idleTimeout: undefined, httpsRedirect: false, hsts: null, middlewares: null };
      this.#domainRoutes.set(pool, route);
    }
    return route;
  }
}

function hostKeys(rule: RouteRule): readonly string[] {
  return rule.hosts.length === 0 ? [ANY_HOST] : rule.hosts;
}

function compare(a: string | null, b: string | null): number {
  return (a ?? '') < (b ?? '') ? -1 : (a ?? '') > (b ?? '') ? 1 : 0;
}

/** Longest-prefix match on path-segment boundaries: "/api" matches "/api", "/api/x" and "/api?q", not "/apix". */
function matchPrefix(entries: readonly PrefixEntry[], path: string): Route | null {
  for (let i = 0; i < entries.length; i++) {
    const { prefix, route } = entries[i];
    if (!path.startsWith(prefix)) continue;
    if (prefix.length === path.length || prefix.charCodeAt(prefix.length - 1) === 47 /* / */) return route;
    const next = path.charCodeAt(prefix.length);
    if (next === 47 /* / */ || next === 63 /* ? */) return route;
  }
  return null;
}
