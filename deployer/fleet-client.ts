// A client of fleet's HTTP API v1 (shared/fleet-api.md): typed methods, pages
// followed, and every failure mapped to one FleetError with a stable code —
// TUG_FLEET_UNREACHABLE (no answer), TUG_FLEET_REJECTED (4xx, fleet's message
// kept), TUG_FLEET_ERROR (5xx or an answer that is not fleet's). Endpoints are
// http(s)://HOST:PORT or unix:///path/to/fleet.sock, as fleetctl takes them.
// It never retries a write: a PUT that timed out may have been applied.
import { Agent, request } from 'undici';
import { configError, ErrorCodes, TugError, type ErrorCode } from '../common/errors.ts';
import type { UnitOption } from '../units/unit-file.ts';

export type DesiredState = 'inactive' | 'loaded' | 'launched';
export const DESIRED_STATES: readonly DesiredState[] = ['inactive', 'loaded', 'launched'];

export interface FleetUnit {
  readonly name: string;
  readonly options: readonly UnitOption[];
  readonly desiredState: DesiredState;
  /** Absent for global units. */
  readonly currentState?: string;
  /** Absent while unscheduled, and for global units. */
  readonly machineID?: string;
}

export interface FleetUnitState {
  readonly name: string;
  readonly hash: string;
  readonly machineID: string;
  readonly systemdLoadState: string;
  readonly systemdActiveState: string;
  readonly systemdSubState: string;
}

export interface FleetMachine {
  readonly id: string;
  readonly primaryIP: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export class FleetError extends TugError {
  /** fleet's HTTP status, or null when fleet did not answer. */
  readonly status: number | null;

  constructor(code: ErrorCode, status: number | null, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'FleetError';
    this.status = status;
  }
}

export interface FleetEndpoint {
  /** The origin requests go to (for a unix socket, a placeholder host). */
  readonly origin: string;
  readonly socketPath: string | null;
  readonly basePath: string;
}

export function parseFleetEndpoint(value: string): FleetEndpoint {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`--endpoint: ${JSON.stringify(value)} is not a URL (http://HOST:PORT or unix:///var/run/fleet.sock)`);
  }
  if (url.protocol === 'unix:') {
    if (!url.pathname || url.pathname === '/') throw configError('--endpoint: unix:// needs a socket path, e.g. unix:///var/run/fleet.sock');
    return { origin: 'http://fleet', socketPath: decodeURIComponent(url.pathname), basePath: '/fleet/v1' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError('--endpoint: use http://, https:// or unix://');
  if (url.search || url.hash) throw configError('--endpoint: no query or fragment');
  return { origin: url.origin, socketPath: null, basePath: `${url.pathname.replace(/\/+$/, '')}/fleet/v1` };
}

const MAX_PAGES = 1000;

export class FleetClient {
  readonly endpoint: FleetEndpoint;
  readonly #agent: Agent;
  readonly #timeout: number;

  constructor(endpoint: string | FleetEndpoint, options: { timeout?: number } = {}) {
    this.endpoint = typeof endpoint === 'string' ? parseFleetEndpoint(endpoint) : endpoint;
    this.#timeout = options.timeout ?? 10_000;
    this.#agent = new Agent({
      connect: this.endpoint.socketPath === null ? { timeout: this.#timeout } : { socketPath: this.endpoint.socketPath, timeout: this.#timeout },
    });
  }

  async listUnits(): Promise<FleetUnit[]> {
    return this.#list<FleetUnit>('/units', 'units');
  }

  async getUnit(name: string): Promise<FleetUnit | null> {
    const res = await this.#call('GET', `/units/${encodeURIComponent(name)}`, undefined, [200, 404]);
    return res.status === 404 ? null : res.body as FleetUnit;
  }

  /**
   * PUT a unit with its options: 'created' (201: new, or replaced because its
   * content changed) or 'unchanged' (204: same content, desired state set).
   */
  async submitUnit(name: string, options: readonly UnitOption[], desiredState: DesiredState): Promise<'created' | 'unchanged'> {
    const res = await this.#call('PUT', `/units/${encodeURIComponent(name)}`, { name, options, desiredState }, [201, 204]);
    return res.status === 201 ? 'created' : 'unchanged';
  }

  async setDesiredState(name: string, desiredState: DesiredState): Promise<void> {
    await this.#call('PUT', `/units/${encodeURIComponent(name)}`, { desiredState }, [204]);
  }

  /** true when destroyed, false when fleet did not know the unit. */
  async destroyUnit(name: string): Promise<boolean> {
    return (await this.#call('DELETE', `/units/${encodeURIComponent(name)}`, undefined, [204, 404])).status === 204;
  }

  async listUnitStates(filter: { machineID?: string; unitName?: string } = {}): Promise<FleetUnitState[]> {
    const query = new URLSearchParams();
    if (filter.machineID) query.set('machineID', filter.machineID);
    if (filter.unitName) query.set('unitName', filter.unitName);
    return this.#list<FleetUnitState>(`/state${query.size ? `?${query}` : ''}`, 'states');
  }

  async listMachines(): Promise<FleetMachine[]> {
    return this.#list<FleetMachine>('/machines', 'machines');
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  async #list<T>(path: string, key: string): Promise<T[]> {
    const items: T[] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const sep = path.includes('?') ? '&' : '?';
      const res = await this.#call('GET', token === undefined ? path : `${path}${sep}nextPageToken=${encodeURIComponent(token)}`, undefined, [200]);
      const body = res.body as Record<string, unknown>;
      const list = body[key] ?? [];
      if (!Array.isArray(list)) throw new FleetError(ErrorCodes.FLEET_ERROR, res.status, `GET ${path}: "${key}" is not a list`);
      items.push(...(list as T[]));
      if (typeof body.nextPageToken !== 'string' || body.nextPageToken === '') return items;
      token = body.nextPageToken;
    }
    throw new FleetError(ErrorCodes.FLEET_ERROR, null, `GET ${path}: more than ${MAX_PAGES} pages`);
  }

  async #call(method: string, path: string, body: unknown, expected: readonly number[]): Promise<{ status: number; body: unknown }> {
    const what = `${method} ${path}`;
    let status: number;
    let text: string;
    try {
      const res = await request(`${this.endpoint.origin}${this.endpoint.basePath}${path}`, {
        method: method as 'GET',
        dispatcher: this.#agent,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        headersTimeout: this.#timeout,
        bodyTimeout: this.#timeout,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (err) {
      throw new FleetError(ErrorCodes.FLEET_UNREACHABLE, null, `${what}: fleet did not answer at ${this.#describeEndpoint()}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = text === '' ? {} : JSON.parse(text);
    } catch {
      throw new FleetError(ErrorCodes.FLEET_ERROR, status, `${what}: HTTP ${status} with a body that is not JSON (is ${this.#describeEndpoint()} fleet's API?)`);
    }
    if (expected.includes(status)) return { status, body: parsed };
    const message = (parsed as { error?: { message?: unknown } }).error?.message;
    const reason = typeof message === 'string' && message !== '' ? message : `HTTP ${status}`;
    throw new FleetError(status >= 400 && status < 500 ? ErrorCodes.FLEET_REJECTED : ErrorCodes.FLEET_ERROR, status, `${what}: ${reason} (HTTP ${status})`);
  }

  #describeEndpoint(): string {
    return this.endpoint.socketPath === null ? this.endpoint.origin : `unix://${this.endpoint.socketPath}`;
  }
}
