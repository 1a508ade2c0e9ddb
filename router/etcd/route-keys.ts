// The etcd key schema of the router, and the parser from raw etcd values to
// typed table changes. This is the only place that knows the layout:
//
//   <prefix>/services/<service>/<instance>  = "host:port" | {"host","port","weight"?}
//   <prefix>/routes/<name>                  = RouteRule as JSON (see README)
//   <prefix>/tls/<name>                     = {"cert": PEM chain, "key": PEM key}; the name
//                                             "default" is served to clients whose name no
//                                             certificate covers (and to clients without SNI)
//   <prefix>/auth/<name>                    = htpasswd lines (bcrypt only): a user list that route
//                                             rules name with "basicAuth": {"usersKey": "<name>"}
//   <prefix>/acme/challenges/<token>        = an HTTP-01 key authorization every router answers
//   <prefix>/acme/alpn/<host>               = a TLS-ALPN-01 validation certificate every router serves
//   <prefix>/cluster/sticky-key             = the sticky-session cookie key (etcd/sticky-key.ts;
//                                             read once at start, never watched)
//   <prefix>/acme/state/<host>              = the state of <host>'s ACME certificate
//                                             (the rest of /acme/ is drawn in acme/acme-keys.ts)
//
// Parsing never throws on bad input: it returns an error that names the key, so
// the caller can warn and keep the last good value.
import { etcdValueError, type TugError } from '../../common/errors.ts';
import { AcmeKeys, isExactHost } from '../acme/acme-keys.ts';
import { HOST_NAME } from './host-name.ts';
import { parseHealthCheck, parseMirror, parseServices, parseSticky, type HealthCheckSpec, type MirrorPolicy, type StickyPolicy, type WeightedService } from './policy-fields.ts';
import { SERVICE_NAME } from './service-name.ts';
import { parseAcmeState, type AcmeState } from '../acme/acme-state.ts';
import { isChallengeToken, parseKeyAuthorization } from '../acme/challenge-store.ts';
import { parseAlpnCertificate, type AlpnCertificate } from '../acme/alpn-challenge-store.ts';
import { parseCertificateValue, type CertificateSpec } from '../tls/tls-certificate.ts';
import { MIDDLEWARE_FIELDS, parseMiddlewares, type MiddlewareSpec } from '../middleware/middleware-spec.ts';
import { checkUserList, USER_LIST_NAME } from '../middleware/user-lists.ts';

export interface BackendSpec {
  readonly host: string;
  readonly port: number;
  /** Relative share of requests, 1..100 (default 1). */
  readonly weight: number;
}

export type BalancePolicy = 'round-robin' | 'least-connections';
export const balancePolicies: readonly BalancePolicy[] = ['round-robin', 'least-connections'];

export type { HealthCheckSpec, MirrorPolicy, StickyPolicy, WeightedService };

export interface RouteRule {
  /** The service, or with a split the first one named (what one-service views show). */
  readonly service: string;
  /** The services and their weights: one entry of weight 1 without a split. */
  readonly services: readonly WeightedService[];
  /** Active health checks of the services' backends (run by each router's primary), or null. */
  readonly healthCheck: HealthCheckSpec | null;
  /** Pin clients to a backend by a signed cookie, or null. */
  readonly sticky: StickyPolicy | null;
  /** Copy a share of the requests (those without a body) to another service, answers discarded; or null. */
  readonly mirror: MirrorPolicy | null;
  /** Exact hostnames or `*.domain` wildcards; empty = any host. Lowercase. */
  readonly hosts: readonly string[];
  /** Path prefixes, matched on segment boundaries; longest wins. Default ["/"]. */
  readonly paths: readonly string[];
  readonly balance: BalancePolicy;
  /** Per-route overrides of the upstream response-header and idle timeouts, in ms. */
  readonly timeouts: { readonly response?: number; readonly idle?: number };
  /** Answer requests on the HTTP listener with a 308 to the same URL on HTTPS. */
  readonly httpsRedirect: boolean;
  /** Strict-Transport-Security on HTTPS responses, or null for none. */
  readonly hsts: HstsPolicy | null;
  /** Obtain certificates for the exact hosts from the ACME directory (router/acme/). */
  readonly acme: boolean;
  /** Rewrite, headers, access control, rate limit, compression, CORS, body limit (router/middleware/); null: none. */
  readonly middlewares: MiddlewareSpec | null;
}

export interface HstsPolicy {
  readonly maxAge: number;
  readonly includeSubDomains: boolean;
  readonly preload: boolean;
}

export type TableChange =
  | { readonly kind: 'backend'; readonly key: string; readonly service: string; readonly instance: string; readonly spec: BackendSpec | null }
  | { readonly kind: 'route'; readonly key: string; readonly name: string; readonly rule: RouteRule | null }
  | { readonly kind: 'certificate'; readonly key: string; readonly name: string; readonly certificate: CertificateSpec | null }
  /** A shared basicAuth user list: its htpasswd text (checked) and user count; null text: deleted. */
  | { readonly kind: 'user-list'; readonly key: string; readonly name: string; readonly users: string | null; readonly count: number }
  | { readonly kind: 'challenge'; readonly key: string; readonly token: string; readonly keyAuthorization: string | null }
  /** A TLS-ALPN-01 validation certificate for `host` (checked); null: deleted. */
  | { readonly kind: 'alpn-challenge'; readonly key: string; readonly host: string; readonly certificate: AlpnCertificate | null }
  | { readonly kind: 'acme-state'; readonly key: string; readonly host: string; readonly state: AcmeState | null };

/** Whether a change deletes its key (the kind's value is null). */
export function isRemoval(change: TableChange): boolean {
  switch (change.kind) {
    case 'backend': return change.spec === null;
    case 'route': return change.rule === null;
    case 'certificate': return change.certificate === null;
    case 'user-list': return change.users === null;
    case 'challenge': return change.keyAuthorization === null;
    case 'alpn-challenge': return change.certificate === null;
    case 'acme-state': return change.state === null;
  }
}

export type ParseResult = { ok: true; change: TableChange } | { ok: false; error: TugError } | { ok: false; error: null };

export { SERVICE_NAME };
const INSTANCE_NAME = /^[^/\s]{1,128}$/;
const ROUTE_NAME = /^[^/\s]{1,128}$/;
const CERTIFICATE_NAME = /^[^/\s]{1,128}$/;
const PATH_PREFIX = /^\/[\x21-\x7e]*$/;
const IPV4_OR_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

export class RouteKeys {
  readonly root: string;
  readonly servicesPrefix: string;
  readonly routesPrefix: string;
  readonly tlsPrefix: string;
  readonly authPrefix: string;
  readonly acme: AcmeKeys;
  /** Every prefix the router watches. */
  readonly prefixes: readonly string[];

  constructor(prefix: string) {
    this.root = prefix.replace(/\/+$/, '');
    this.servicesPrefix = `${this.root}/services/`;
    this.routesPrefix = `${this.root}/routes/`;
    this.tlsPrefix = `${this.root}/tls/`;
    this.authPrefix = `${this.root}/auth/`;
    this.acme = new AcmeKeys(this.root, this.tlsPrefix);
    this.prefixes = [this.servicesPrefix, this.routesPrefix, this.tlsPrefix, this.authPrefix, this.acme.challengesPrefix, this.acme.alpnPrefix, this.acme.statePrefix];
  }

  /** Parses one key; `value === null` means the key was deleted. Keys outside the schema yield `{ok:false, error:null}`. */
  parse(key: string, value: string | null): ParseResult {
    if (key.startsWith(this.servicesPrefix)) {
      const rest = key.slice(this.servicesPrefix.length);
      const slash = rest.indexOf('/');
      const service = slash < 0 ? rest : rest.slice(0, slash);
      const instance = slash < 0 ? '' : rest.slice(slash + 1);
      if (!SERVICE_NAME.test(service) || !INSTANCE_NAME.test(instance)) {
        return { ok: false, error: etcdValueError(key, 'not a backend key: expected <prefix>/services/<service>/<instance>') };
      }
      if (value === null) return { ok: true, change: { kind: 'backend', key, service, instance, spec: null } };
      const spec = parseBackendValue(value);
      if (typeof spec === 'string') return { ok: false, error: etcdValueError(key, spec) };
      return { ok: true, change: { kind: 'backend', key, service, instance, spec } };
    }
    if (key.startsWith(this.routesPrefix)) {
      const name = key.slice(this.routesPrefix.length);
      if (!ROUTE_NAME.test(name)) return { ok: false, error: etcdValueError(key, 'not a route key: expected <prefix>/routes/<name>') };
      if (value === null) return { ok: true, change: { kind: 'route', key, name, rule: null } };
      const rule = parseRouteRule(value);
      if (typeof rule === 'string') return { ok: false, error: etcdValueError(key, rule) };
      return { ok: true, change: { kind: 'route', key, name, rule } };
    }
    if (key.startsWith(this.tlsPrefix)) {
      const name = key.slice(this.tlsPrefix.length);
      if (!CERTIFICATE_NAME.test(name)) return { ok: false, error: etcdValueError(key, 'not a certificate key: expected <prefix>/tls/<name>') };
      if (value === null) return { ok: true, change: { kind: 'certificate', key, name, certificate: null } };
      const certificate = parseCertificateValue(value);
      if (typeof certificate === 'string') return { ok: false, error: etcdValueError(key, certificate) };
      return { ok: true, change: { kind: 'certificate', key, name, certificate } };
    }
    if (key.startsWith(this.authPrefix)) {
      const name = key.slice(this.authPrefix.length);
      if (!USER_LIST_NAME.test(name)) return { ok: false, error: etcdValueError(key, 'not a user-list key: expected <prefix>/auth/<name>') };
      if (value === null) return { ok: true, change: { kind: 'user-list', key, name, users: null, count: 0 } };
      const count = checkUserList(value);
      if (typeof count === 'string') return { ok: false, error: etcdValueError(key, `user list must be htpasswd lines, user:bcrypt-hash (htpasswd -nB): ${count}`) };
      return { ok: true, change: { kind: 'user-list', key, name, users: value, count } };
    }
    if (key.startsWith(this.acme.challengesPrefix)) {
      const token = key.slice(this.acme.challengesPrefix.length);
      if (!isChallengeToken(token)) return { ok: false, error: etcdValueError(key, 'not a challenge key: expected <prefix>/acme/challenges/<token>') };
      if (value === null) return { ok: true, change: { kind: 'challenge', key, token, keyAuthorization: null } };
      const parsed = parseKeyAuthorization(token, value);
      if (typeof parsed === 'string') return { ok: false, error: etcdValueError(key, parsed) };
      return { ok: true, change: { kind: 'challenge', key, token, keyAuthorization: parsed.keyAuthorization } };
    }
    if (key.startsWith(this.acme.alpnPrefix)) {
      const host = key.slice(this.acme.alpnPrefix.length);
      if (!isExactHost(host)) return { ok: false, error: etcdValueError(key, 'not a TLS-ALPN-01 key: expected <prefix>/acme/alpn/<host>') };
      if (value === null) return { ok: true, change: { kind: 'alpn-challenge', key, host, certificate: null } };
      const certificate = parseAlpnCertificate(host, value);
      if (typeof certificate === 'string') return { ok: false, error: etcdValueError(key, certificate) };
      return { ok: true, change: { kind: 'alpn-challenge', key, host, certificate } };
    }
    if (key.startsWith(this.acme.statePrefix)) {
      const host = key.slice(this.acme.statePrefix.length);
      if (!HOST_NAME.test(host) || host.startsWith('*.')) return { ok: false, error: etcdValueError(key, 'not an ACME state key: expected <prefix>/acme/state/<host>') };
      if (value === null) return { ok: true, change: { kind: 'acme-state', key, host, state: null } };
      const state = parseAcmeState(value);
      if (typeof state === 'string') return { ok: false, error: etcdValueError(key, state) };
      return { ok: true, change: { kind: 'acme-state', key, host, state } };
    }
    return { ok: false, error: null };
  }
}


/** Parses `host:port`, `[v6]:port` or `{"host","port","weight"}`; returns a reason string when invalid. */
export function parseBackendValue(raw: string): BackendSpec | string {
  const value = raw.trim();
  if (value.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(value);
    } catch {
      return 'value is neither host:port nor valid JSON';
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'JSON value must be an object {"host","port","weight"?}';
    const { host, port, weight = 1 } = parsed as Record<string, unknown>;
    if (typeof host !== 'string' || !validHost(host.replace(/^\[(.*)\]$/, '$1'))) return 'JSON "host" must be an IP address or hostname';
    if (!validPort(port)) return 'JSON "port" must be an integer 1..65535';
    if (!Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > 100) return 'JSON "weight" must be an integer 1..100';
    return { host: host.replace(/^\[(.*)\]$/, '$1'), port: port as number, weight: weight as number };
  }
  const match = /^(?:\[([^\]]+)\]|([^:\s]+)):(\d{1,5})$/.exec(value);
  if (!match) return 'value must be host:port, [IPv6]:port or a JSON object';
  const host = match[1] ?? match[2];
  const port = Number(match[3]);
  if (!validHost(host)) return `invalid host ${JSON.stringify(host)}`;
  if (!validPort(port)) return `invalid port ${match[3]}`;
  return { host, port, weight: 1 };
}

function validHost(host: string): boolean {
  return host.includes(':') ? IPV6.test(host) : IPV4_OR_NAME.test(host);
}

function validPort(port: unknown): port is number {
  return Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535;
}

const RULE_FIELDS = new Set(['service', 'services', 'hosts', 'host', 'paths', 'path', 'balance', 'timeouts', 'httpsRedirect', 'hsts', 'acme', 'healthCheck', 'sticky', 'mirror', ...MIDDLEWARE_FIELDS]);

/** Parses a route rule's JSON; returns a reason string when invalid. */
export function parseRouteRule(raw: string): RouteRule | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return 'route rule must be JSON';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'route rule must be a JSON object';
  const rule = parsed as Record<string, unknown>;
  for (const field of Object.keys(rule)) {
    if (!RULE_FIELDS.has(field)) return `unknown field ${JSON.stringify(field)} (known: ${[...RULE_FIELDS].join(', ')})`;
  }
  if (rule.service !== undefined && rule.services !== undefined) return 'give "service" or "services", not both';
  let services: WeightedService[];
  if (rule.services !== undefined) {
    const parsed = parseServices(rule.services);
    if (typeof parsed === 'string') return parsed;
    services = parsed;
  } else {
    if (typeof rule.service !== 'string' || !SERVICE_NAME.test(rule.service)) return '"service" must name a service (or "services" a weighted split)';
    services = [{ service: rule.service, weight: 1 }];
  }
  const healthCheck = parseHealthCheck(rule.healthCheck);
  if (typeof healthCheck === 'string') return healthCheck;
  const sticky = parseSticky(rule.sticky);
  if (typeof sticky === 'string') return sticky;
  const mirror = parseMirror(rule.mirror);
  if (typeof mirror === 'string') return mirror;
  const hosts = listField(rule.hosts ?? rule.host ?? []);
  if (!hosts) return '"hosts" must be a string or an array of strings';
  const normalizedHosts = hosts.map((h) => h.toLowerCase().replace(/\.$/, ''));
  for (const h of normalizedHosts) {
    if (!HOST_NAME.test(h)) return `invalid host ${JSON.stringify(h)} (expected a hostname or *.domain)`;
  }
  const paths = listField(rule.paths ?? rule.path ?? ['/']);
  if (!paths || paths.length === 0) return '"paths" must be a path prefix or an array of them';
  for (const p of paths) {
    if (!PATH_PREFIX.test(p)) return `invalid path prefix ${JSON.stringify(p)} (must start with / and be printable ASCII)`;
  }
  const balance = rule.balance ?? 'round-robin';
  if (!balancePolicies.includes(balance as BalancePolicy)) return `"balance" must be one of ${balancePolicies.join(', ')}`;
  const timeouts = rule.timeouts ?? {};
  if (timeouts === null || typeof timeouts !== 'object' || Array.isArray(timeouts)) return '"timeouts" must be an object';
  const { response, idle, ...unknown } = timeouts as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown timeout ${JSON.stringify(Object.keys(unknown)[0])} (known: response, idle)`;
  for (const [name, ms] of [['response', response], ['idle', idle]] as const) {
    if (ms !== undefined && (!Number.isInteger(ms) || (ms as number) < 1 || (ms as number) > 3_600_000)) {
      return `"timeouts.${name}" must be milliseconds, 1..3600000`;
    }
  }
  const httpsRedirect = rule.httpsRedirect ?? false;
  if (typeof httpsRedirect !== 'boolean') return '"httpsRedirect" must be true or false';
  const hsts = parseHsts(rule.hsts);
  if (typeof hsts === 'string') return hsts;
  const acme = rule.acme ?? false;
  if (typeof acme !== 'boolean') return '"acme" must be true or false';
  const middlewares = parseMiddlewares(rule);
  if (typeof middlewares === 'string') return middlewares;
  return {
    service: services[0].service,
    services,
    healthCheck,
    sticky,
    mirror,
    hosts: [...new Set(normalizedHosts)],
    paths: [...new Set(paths)],
    balance: balance as BalancePolicy,
    timeouts: { response: response as number | undefined, idle: idle as number | undefined },
    httpsRedirect,
    hsts,
    acme,
    middlewares,
  };
}

/** `"hsts": {"maxAge": seconds, "includeSubDomains"?: bool, "preload"?: bool}`; absent or false = none. */
function parseHsts(value: unknown): HstsPolicy | null | string {
  if (value === undefined || value === false || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return '"hsts" must be an object {"maxAge", "includeSubDomains"?, "preload"?}';
  const { maxAge, includeSubDomains = false, preload = false, ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown hsts field ${JSON.stringify(Object.keys(unknown)[0])} (known: maxAge, includeSubDomains, preload)`;
  if (!Number.isInteger(maxAge) || (maxAge as number) < 0 || (maxAge as number) > 2 ** 31 - 1) return '"hsts.maxAge" must be seconds, an integer >= 0';
  if (typeof includeSubDomains !== 'boolean' || typeof preload !== 'boolean') return '"hsts.includeSubDomains" and "hsts.preload" must be true or false';
  // Browsers' preload lists take only a policy that covers subdomains for at least a year.
  if (preload && (!includeSubDomains || (maxAge as number) < 31_536_000)) return '"hsts.preload" needs includeSubDomains and a maxAge of at least 31536000';
  return { maxAge: maxAge as number, includeSubDomains, preload };
}

/** The Strict-Transport-Security value of a policy (RFC 6797 §6.1). */
export function hstsHeaderValue(policy: HstsPolicy): string {
  return `max-age=${policy.maxAge}${policy.includeSubDomains ? '; includeSubDomains' : ''}${policy.preload ? '; preload' : ''}`;
}

function listField(value: unknown): string[] | null {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return null;
}
