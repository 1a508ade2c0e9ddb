// An in-process double of fleet's HTTP API v1, following shared/fleet-api.md
// to the letter: base path /fleet/v1 (and the /v1-alpha alias), 415 for a PUT
// that is not application/json, errors as {"error":{"code","message"}}, lists
// paged with fleet's own token format (base64url of {limit, page} as two
// little-endian uint16) and `{}` for an empty list, the unit PUT table, name
// rules and X-Fleet validation. Behind it, FleetCluster schedules units onto
// fake machines and can play the agent. Listens on 127.0.0.1:0.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { DESIRED_STATES, FleetCluster, isGlobal, type DesiredState, type FleetAgent, type Option } from './fleet-cluster.ts';

const UNIT_TYPES = new Set(['service', 'socket', 'busname', 'target', 'snapshot', 'device', 'mount', 'automount', 'swap', 'timer', 'path', 'slice', 'scope']);
const TEMPLATE = /@\.(service|socket|path|target|timer)$/;
const METADATA_PATH = /^\/([^/]+)\/metadata\/([A-Za-z0-9_.-]+)$/;

class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface FleetDoubleOptions {
  readonly agent?: FleetAgent;
  /** fleet's token limit is 100; tests lower it to exercise paging. */
  readonly pageSize?: number;
}

export class FleetDouble {
  readonly cluster: FleetCluster;
  readonly server: Server;
  readonly pageSize: number;
  /** Every request as "METHOD path", for tests that check what a client sent. */
  readonly requests: string[] = [];
  port = 0;

  private constructor(options: FleetDoubleOptions) {
    this.cluster = new FleetCluster(options.agent);
    this.pageSize = options.pageSize ?? 100;
    this.server = createServer((req, res) => { void this.#handle(req, res); });
  }

  static async start(options: FleetDoubleOptions = {}): Promise<FleetDouble> {
    const double = new FleetDouble(options);
    await new Promise<void>((resolve) => double.server.listen(0, '127.0.0.1', resolve));
    double.port = (double.server.address() as { port: number }).port;
    return double;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fleet');
    this.requests.push(`${req.method} ${url.pathname}${url.search}`);
    try {
      const body = await readBody(req);
      const match = /^\/(?:fleet\/v1|v1-alpha)\/(units|state|machines)(?:\/(.*))?$/.exec(url.pathname);
      if (!match) throw new ApiError(404, 'Not Found');
      const [, resource, rest] = match;
      if (resource === 'units' && rest === undefined) {
        if (req.method !== 'GET') throw new ApiError(405, 'only GET supported against this resource');
        return send(res, 200, this.#page('units', [...this.cluster.units.values()].sort((a, b) => a.name.localeCompare(b.name)).map((u) => this.#unitJson(u)), url));
      }
      if (resource === 'units' && rest) {
        const name = decodeURIComponent(rest);
        if (req.method === 'GET') return send(res, 200, this.#unitJson(this.#unit(name)));
        if (req.method === 'DELETE') {
          this.#unit(name);
          this.cluster.units.delete(name);
          this.cluster.reconcile();
          return send(res, 204);
        }
        if (req.method === 'PUT') return send(res, this.#put(name, req.headers['content-type'], body));
        throw new ApiError(405, 'only GET, PUT and DELETE supported against this resource');
      }
      if (resource === 'state' && rest === undefined) {
        if (req.method !== 'GET') throw new ApiError(405, 'only GET supported against this resource');
        const machineID = url.searchParams.get('machineID');
        const unitName = url.searchParams.get('unitName');
        const states = this.cluster.states().filter((s) => (machineID === null || s.machineID === machineID) && (unitName === null || s.name === unitName));
        return send(res, 200, this.#page('states', states, url));
      }
      if (resource === 'machines' && rest === undefined) {
        if (req.method === 'GET') return send(res, 200, this.#page('machines', this.cluster.machines.map((m) => ({ id: m.id, primaryIP: m.primaryIP, metadata: { ...m.metadata } })), url));
        if (req.method === 'PATCH') {
          this.#patchMetadata(body);
          return send(res, 204);
        }
        throw new ApiError(405, 'only GET and PATCH supported against this resource');
      }
      throw new ApiError(404, 'Not Found');
    } catch (err) {
      const status = err instanceof ApiError ? err.status : 500;
      send(res, status, { error: { code: status, message: err instanceof Error ? err.message : String(err) } });
    }
  }

  #unit(name: string) {
    const unit = this.cluster.units.get(name);
    if (!unit) throw new ApiError(404, 'unit does not exist');
    return unit;
  }

  #unitJson(unit: { name: string; options: Option[]; desiredState: string; machineID: string | null }): Record<string, unknown> {
    const json: Record<string, unknown> = { name: unit.name, options: unit.options, desiredState: unit.desiredState };
    const current = this.cluster.currentState(unit as never);
    if (current !== undefined) json.currentState = current;
    if (unit.machineID !== null && !isGlobal(unit.options, unit.name)) json.machineID = unit.machineID;
    return json;
  }

  /** The unit PUT table of shared/fleet-api.md; returns the status (no body on success). */
  #put(name: string, contentType: string | undefined, raw: string): number {
    if ((contentType ?? '').split(';')[0].trim().toLowerCase() !== 'application/json') throw new ApiError(415, 'expected Content-Type application/json');
    let body: { name?: unknown; options?: unknown; desiredState?: unknown };
    try {
      body = JSON.parse(raw) as typeof body;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('expected an object');
      if (body.name !== undefined && typeof body.name !== 'string') throw new Error('name must be a string');
      if (body.desiredState !== undefined && typeof body.desiredState !== 'string') throw new Error('desiredState must be a string');
      if (body.options !== undefined && body.options !== null && !(Array.isArray(body.options) && body.options.every(isOption))) throw new Error('options must be [{section,name,value}]');
    } catch (err) {
      throw new ApiError(400, `unable to decode body: ${(err as Error).message}`);
    }
    const bodyName = (body.name as string | undefined) || name;
    if (bodyName !== name) throw new ApiError(400, `name in URL ${JSON.stringify(name)} differs from unit name in request body ${JSON.stringify(bodyName)}`);
    const nameProblem = validateName(name);
    if (nameProblem) throw new ApiError(400, nameProblem);
    const options = ((body.options ?? []) as Option[]).map((o) => ({ section: o.section, name: o.name, value: o.value }));
    const desired = (body.desiredState as string | undefined) ?? '';
    const existing = this.cluster.units.get(name);
    const content = (list: readonly Option[]) => JSON.stringify(list.map((o) => [o.section, o.name, o.value]));
    const replaces = existing !== undefined && options.length > 0 && content(existing.options) !== content(options);
    if (existing === undefined || replaces) {
      if (options.length === 0) throw new ApiError(409, 'unit does not exist and options field empty');
      const optionsProblem = validateOptions(options, name);
      if (optionsProblem) throw new ApiError(400, optionsProblem);
      if (TEMPLATE.test(name) && desired !== '' && desired !== 'inactive') throw new ApiError(400, `cannot activate template ${JSON.stringify(name)}`);
      // fleet creates the unit, then sets its target state: an unknown state fails the second step.
      if (existing === undefined) this.cluster.units.set(name, { name, options, desiredState: 'inactive', machineID: null });
      else existing.options = options;
      if (desired !== '') this.#setDesired(name, desired);
      this.cluster.reconcile();
      return 201;
    }
    if (desired === '') throw new ApiError(409, 'must provide DesiredState to update existing unit');
    if (TEMPLATE.test(name) && desired !== 'inactive') throw new ApiError(400, `cannot activate template ${JSON.stringify(name)}`);
    this.#setDesired(name, desired);
    this.cluster.reconcile();
    return 204;
  }

  #setDesired(name: string, desired: string): void {
    if (!DESIRED_STATES.includes(desired)) throw new ApiError(500, 'Internal Server Error');
    this.cluster.units.get(name)!.desiredState = desired as DesiredState;
  }

  #patchMetadata(raw: string): void {
    let ops: unknown;
    try {
      ops = JSON.parse(raw);
    } catch (err) {
      throw new ApiError(400, (err as Error).message);
    }
    if (!Array.isArray(ops)) throw new ApiError(400, 'expected a JSON array of operations');
    for (const op of ops as { op?: unknown; path?: unknown; value?: unknown }[]) {
      if (op.op !== 'add' && op.op !== 'remove' && op.op !== 'replace') throw new ApiError(400, 'invalid op: expect add, remove, or replace');
      if (typeof op.path !== 'string' || !METADATA_PATH.test(op.path)) throw new ApiError(400, 'machine metadata path invalid');
      const value = (op.value as { value?: unknown } | undefined)?.value;
      if (op.op !== 'remove' && (typeof value !== 'string' || value === '')) throw new ApiError(400, 'invalid value: add and replace require a value');
    }
    for (const op of ops as { op: string; path: string; value?: { value: string } }[]) {
      const [, machineID, key] = METADATA_PATH.exec(op.path)!;
      this.cluster.setMetadata(machineID, key, op.op === 'remove' ? null : op.value!.value);
    }
  }

  /** fleet's paging: `{<key>: items, nextPageToken?}`, `{}` when the page is empty, 400 on a bad token. */
  #page(key: string, all: readonly unknown[], url: URL): Record<string, unknown> {
    const tokens = url.searchParams.getAll('nextPageToken');
    if (tokens.length > 1) throw new ApiError(400, 'too many values for page token');
    const page = tokens.length === 0 ? 1 : this.#decodeToken(tokens[0]);
    const start = (page - 1) * this.pageSize;
    const stop = page * this.pageSize;
    const out: Record<string, unknown> = {};
    if (start < all.length) {
      out[key] = all.slice(start, Math.min(stop, all.length));
      // fleet hands out a next token whenever a page is full, even if nothing follows it.
      if (stop <= all.length) out.nextPageToken = encodeToken(this.pageSize, page + 1);
    }
    return out;
  }

  #decodeToken(token: string): number {
    if (!/^[A-Za-z0-9_-]*={0,2}$/.test(token) || token.length % 4 !== 0) throw new ApiError(400, 'illegal base64 data in page token');
    const bytes = Buffer.from(token, 'base64url');
    if (bytes.length < 4) throw new ApiError(400, 'unexpected EOF');
    const limit = bytes.readUInt16LE(0);
    const page = bytes.readUInt16LE(2);
    if (limit !== this.pageSize) throw new ApiError(400, `token limit must be ${this.pageSize}`);
    if (page === 0) throw new ApiError(400, 'token page must be greater than zero');
    return page;
  }
}

export function encodeToken(limit: number, page: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt16LE(limit, 0);
  bytes.writeUInt16LE(page, 2);
  return bytes.toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
}

function isOption(o: unknown): boolean {
  const option = o as Record<string, unknown>;
  return option !== null && typeof option === 'object' && typeof option.section === 'string' && typeof option.name === 'string' && typeof option.value === 'string';
}

function validateName(name: string): string | null {
  if (name.length === 0) return 'unit name cannot be empty';
  if (name.length > 256) return 'unit name exceeds maximum length (256)';
  const dot = name.lastIndexOf('.');
  if (dot === -1) return 'unit name must contain "."';
  if (dot === name.length - 1) return 'unit name cannot end in "."';
  if (!UNIT_TYPES.has(name.slice(dot + 1))) return `invalid unit type: ${JSON.stringify(name.slice(dot + 1))}`;
  const bad = /[^A-Za-z0-9:_.@-]/.exec(name.slice(0, dot));
  if (bad) return `invalid character ${JSON.stringify(bad[0])} in unit name`;
  if (name.startsWith('@')) return 'unit name cannot start in "@"';
  return null;
}

function validateOptions(options: readonly Option[], name: string): string | null {
  const has = (key: string) => options.some((o) => o.section === 'X-Fleet' && o.name === key);
  const global = isGlobal(options, name);
  const pairs: [boolean, string][] = [
    [has('MachineID') && has('MachineOf'), 'MachineID cannot be used with MachineOf'],
    [has('MachineID') && has('Conflicts'), 'MachineID cannot be used with Conflicts'],
    [has('MachineID') && global, 'MachineID cannot be used with Global'],
    [has('MachineID') && has('Replaces'), 'MachineID cannot be used with Replaces'],
    [global && has('MachineOf'), 'Global cannot be used with MachineOf'],
    [global && has('Replaces'), 'Global cannot be used with Replaces'],
    [has('Conflicts') && has('Replaces'), 'Conflicts cannot be used with Replaces'],
  ];
  const found = pairs.find(([bad]) => bad)?.[1];
  if (found) return found;
  const spec = (v: string) => v.replace(/%n/g, name);
  const peers = options.filter((o) => o.section === 'X-Fleet' && o.name === 'MachineOf').flatMap((o) => spec(o.value).split(/\s+/));
  if (peers.includes(name)) return `MachineOf=${name}: circular reference`;
  const conflicts = options.filter((o) => o.section === 'X-Fleet' && o.name === 'Conflicts').flatMap((o) => o.value.split(/\s+/));
  for (const peer of peers) {
    for (const glob of conflicts) {
      if (new RegExp(`^${glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(peer)) return `unresolvable requirements: peer ${JSON.stringify(peer)} matches conflict ${JSON.stringify(glob)}`;
    }
  }
  return null;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}
