// The table as the primary sees it: what etcd says, as plain values. The
// primary never proxies, so it keeps no Backend, pool or balancer: services
// with their instances, and route rules, for `/routes`, `/metrics` and the
// dashboard. A service stays listed after its last instance leaves, as it stays
// known to the workers' tables (503, not 404). Shared basicAuth user lists are
// kept as their user counts only (the workers hold the hashes).
// Never: hold a socket, a timer, or live backend state (that is the workers').
import type { RouteRule, TableChange } from '../etcd/route-keys.ts';
import { redactMiddlewares, type UserListView } from '../middleware/middleware-spec.ts';

export interface InstanceView {
  readonly instance: string;
  readonly address: string;
  readonly weight: number;
}

export interface ServiceView {
  readonly name: string;
  readonly instances: readonly InstanceView[];
}

/** A route whose basicAuth names a shared user list. */
export interface UserListReference {
  readonly route: string;
  readonly name: string;
  readonly list: UserListView;
}

export class TableView {
  readonly #domain: string | null;
  readonly #authPrefix: string;
  readonly #services = new Map<string, Map<string, InstanceView>>();
  readonly #routes = new Map<string, RouteRule>();
  /** Shared user lists with a valid value: name → user count. */
  readonly #userLists = new Map<string, number>();

  /** `authPrefix`: `<prefix>/auth/`, to show each list's full key. */
  constructor(domain: string | null, authPrefix = '/auth/') {
    this.#domain = domain === null ? null : domain.toLowerCase();
    this.#authPrefix = authPrefix;
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
      } else if (change.kind === 'user-list') {
        if (change.users === null) this.#userLists.delete(change.name);
        else this.#userLists.set(change.name, change.count);
      }
    }
  }

  /** A shared user list as `/routes` shows it. */
  userList(name: string): UserListView {
    const count = this.#userLists.get(name);
    return { key: `${this.#authPrefix}${name}`, resolves: count !== undefined, userCount: count ?? 0 };
  }

  /** Every route whose basicAuth names a shared user list, by route name. */
  userListReferences(): UserListReference[] {
    const references: UserListReference[] = [];
    for (const [route, rule] of this.#routes) {
      const name = rule.middlewares?.basicAuth?.usersKey;
      if (name !== undefined && name !== null) references.push({ route, name, list: this.userList(name) });
    }
    return references.sort((a, b) => (a.route < b.route ? -1 : a.route > b.route ? 1 : 0));
  }

  /** The route rules by name. */
  routes(): IterableIterator<[string, RouteRule]> {
    return this.#routes.entries();
  }

  services(): ServiceView[] {
    return [...this.#services].map(([name, instances]) => ({ name, instances: [...instances.values()] }));
  }

  /** A rule as the admin listener shows it (`/routes`, the dashboard): never a password hash. */
  ruleView(rule: RouteRule): object {
    return rule.middlewares === null ? rule : { ...rule, middlewares: redactMiddlewares(rule.middlewares, (name) => this.userList(name)) };
  }

  /** The table as operators see it on the admin `/routes` endpoint. */
  toJSON(): object {
    const services: Record<string, readonly InstanceView[]> = {};
    for (const { name, instances } of this.services()) services[name] = instances;
    const routes: Record<string, object> = {};
    for (const [name, rule] of this.#routes) routes[name] = this.ruleView(rule);
    // Every list that exists or is referred to, with the routes referring to it.
    const userLists: Record<string, UserListView & { routes: string[] }> = {};
    for (const name of [...this.#userLists.keys()].sort()) userLists[name] = { ...this.userList(name), routes: [] };
    for (const { route, name, list } of this.userListReferences()) (userLists[name] ??= { ...list, routes: [] }).routes.push(route);
    return { domain: this.#domain, services, routes, userLists };
  }
}
