// The table as the primary sees it: what etcd says, as plain values. The
// primary never proxies, so it keeps no Backend, pool or balancer: services
// with their instances, and route rules, for `/routes`, `/metrics` and the
// dashboard. A service stays listed after its last instance leaves, as it stays
// known to the workers' tables (503, not 404).
// Never: hold a socket, a timer, or live backend state (that is the workers').
import type { RouteRule, TableChange } from '../etcd/route-keys.ts';
import { redactMiddlewares } from '../middleware/middleware-spec.ts';

export interface InstanceView {
  readonly instance: string;
  readonly address: string;
  readonly weight: number;
}

export interface ServiceView {
  readonly name: string;
  readonly instances: readonly InstanceView[];
}

export class TableView {
  readonly #domain: string | null;
  readonly #services = new Map<string, Map<string, InstanceView>>();
  readonly #routes = new Map<string, RouteRule>();

  constructor(domain: string | null) {
    this.#domain = domain === null ? null : domain.toLowerCase();
  }

  apply(changes: readonly TableChange[]): void {
    for (const change of changes) {
      if (change.kind === 'backend') {
        let instances = this.#services.get(change.service);
        if (instances === undefined) this.#services.set(change.service, (instances = new Map()));
        const spec = change.spec;
        if (spec === null) instances.delete(change.instance);
        else instances.set(change.instance, { instance: change.instance, address: spec.host.includes(':') ? `[${spec.host}]:${spec.port}` : `${spec.host}:${spec.port}`, weight: spec.weight });
      } else if (change.kind === 'route') {
        if (change.rule === null) this.#routes.delete(change.name);
        else this.#routes.set(change.name, change.rule);
        // A rule's services are known from then on, as in the workers' tables.
        for (const { service } of change.rule?.services ?? []) if (!this.#services.has(service)) this.#services.set(service, new Map());
        const mirror = change.rule?.mirror?.service;
        if (mirror !== undefined && !this.#services.has(mirror)) this.#services.set(mirror, new Map());
      }
    }
  }

  /** The route rules by name. */
  routes(): IterableIterator<[string, RouteRule]> {
    return this.#routes.entries();
  }

  services(): ServiceView[] {
    return [...this.#services].map(([name, instances]) => ({ name, instances: [...instances.values()] }));
  }

  /** The table as operators see it on the admin `/routes` endpoint. */
  toJSON(): object {
    const services: Record<string, readonly InstanceView[]> = {};
    for (const { name, instances } of this.services()) services[name] = instances;
    const routes: Record<string, object> = {};
    for (const [name, rule] of this.#routes) routes[name] = rule.middlewares === null ? rule : { ...rule, middlewares: redactMiddlewares(rule.middlewares) };
    return { domain: this.#domain, services, routes };
  }
}
