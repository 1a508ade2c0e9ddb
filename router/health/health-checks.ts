// Which backends the router's primary checks, and the verdicts it sends the
// workers. One checker per backend address, however many routes, services or
// workers use it (the first route by name that asks for checks sets how); its
// verdicts reach every worker as the set of failing addresses (worker-messages.ts),
// where the balancers skip them together with passive ejection.
//
// Fail-open: when every checked backend of a service fails, the service keeps
// being served by all of them (the balancers fall back to failing backends)
// — an outage of a health endpoint must not become an outage of the site — and
// it is logged and shown (`tug_service_fail_open`, `/routes`).
// Never: touches the workers' tables directly, or checks from a worker.
import type { Logger } from '../../common/logger.ts';
import type { HealthCheckSpec, RouteRule } from '../etcd/route-keys.ts';
import type { ServiceView } from '../table/table-view.ts';
import { BackendChecker, type CheckState } from './backend-checker.ts';

export class HealthChecks {
  readonly #log: Logger;
  readonly #onChange: (unhealthy: ReadonlySet<string>) => void;
  readonly #checkers = new Map<string, BackendChecker>();
  /** Checked service → its checked addresses. */
  #services = new Map<string, readonly string[]>();
  readonly #failOpen = new Set<string>();
  #unhealthy: ReadonlySet<string> = new Set();

  constructor(log: Logger, onChange: (unhealthy: ReadonlySet<string>) => void) {
    this.#log = log;
    this.#onChange = onChange;
  }

  /** The failing addresses now (what a new worker is seeded with). */
  get unhealthy(): ReadonlySet<string> {
    return this.#unhealthy;
  }

  /** Whether a change of this service's instances can change what is checked. */
  watches(service: string): boolean {
    return this.#services.has(service);
  }

  /** Reconciles the checkers with the table: routes with "healthCheck", and their services' instances. */
  update(routes: Iterable<readonly [string, RouteRule]>, services: readonly ServiceView[]): void {
    const instances = new Map(services.map((s) => [s.name, s.instances]));
    const wanted = new Map<string, HealthCheckSpec>();
    const checked = new Map<string, string[]>();
    for (const [, rule] of [...routes].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
      if (rule.healthCheck === null) continue;
      for (const { service } of rule.services) {
        const addresses = checked.get(service) ?? [];
        checked.set(service, addresses);
        for (const { address } of instances.get(service) ?? []) {
          if (!wanted.has(address)) wanted.set(address, rule.healthCheck);
          if (!addresses.includes(address)) addresses.push(address);
        }
      }
    }
    for (const [address, checker] of this.#checkers) {
      if (wanted.has(address)) continue;
      checker.close();
      this.#checkers.delete(address);
    }
    for (const [address, spec] of wanted) {
      const checker = this.#checkers.get(address);
      if (checker !== undefined) {
        checker.spec = spec;
        continue;
      }
      const at = address.lastIndexOf(':');
      const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
      this.#checkers.set(address, new BackendChecker(host, Number(address.slice(at + 1)), spec, (c) => this.#onVerdict(c)));
    }
    this.#services = checked;
    this.#refresh();
  }

  #onVerdict(checker: BackendChecker): void {
    const state = checker.state();
    if (checker.healthy) this.#log.info({ backend: checker.address, check: state.check }, 'backend passes its health checks: back in rotation');
    else this.#log.warn({ backend: checker.address, check: state.check, err: state.lastError }, 'backend fails its health checks: out of rotation');
    this.#refresh();
  }

  /** Recomputes the failing set and the fail-open services; tells the workers when the set changed. */
  #refresh(): void {
    const unhealthy = new Set<string>();
    for (const [address, checker] of this.#checkers) if (!checker.healthy) unhealthy.add(address);
    for (const [service, addresses] of this.#services) {
      const failing = addresses.length > 0 && addresses.every((a) => unhealthy.has(a));
      if (failing && !this.#failOpen.has(service)) {
        this.#failOpen.add(service);
        this.#log.warn({ service, backends: addresses.length }, 'every backend of the service fails its health checks: serving from all of them (fail-open)');
      } else if (!failing && this.#failOpen.delete(service)) {
        this.#log.info({ service }, 'the service has a backend passing its health checks again: fail-open ends');
      }
    }
    for (const service of this.#failOpen) if (!this.#services.has(service)) this.#failOpen.delete(service);
    const previous = this.#unhealthy;
    this.#unhealthy = unhealthy;
    if (previous.size !== unhealthy.size || [...unhealthy].some((a) => !previous.has(a))) this.#onChange(unhealthy);
  }

  /** For `/routes`: each checked backend's state, and the services failing open. */
  toJSON(): { backends: Record<string, CheckState>; failOpen: string[] } {
    const backends: Record<string, CheckState> = {};
    for (const [address, checker] of this.#checkers) backends[address] = checker.state();
    return { backends, failOpen: [...this.#failOpen].sort() };
  }

  /** The Prometheus families of the checks (appended to the router's /metrics). */
  metricsText(): string {
    const lines = [
      '# HELP tug_backend_healthy Whether the backend passes its active health checks (1) or not (0), for services of routes with "healthCheck".',
      '# TYPE tug_backend_healthy gauge',
    ];
    for (const [service, addresses] of this.#services) {
      for (const address of addresses) lines.push(`tug_backend_healthy{service="${service}",backend="${address}"} ${this.#checkers.get(address)?.healthy === false ? 0 : 1}`);
    }
    lines.push('# HELP tug_service_fail_open Whether every checked backend of the service fails its health checks, so it is served from all of them anyway (1).', '# TYPE tug_service_fail_open gauge');
    for (const service of this.#services.keys()) lines.push(`tug_service_fail_open{service="${service}"} ${this.#failOpen.has(service) ? 1 : 0}`);
    return `${lines.join('\n')}\n`;
  }

  close(): void {
    for (const checker of this.#checkers.values()) checker.close();
    this.#checkers.clear();
  }
}
