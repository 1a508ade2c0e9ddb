// The traffic-policy fields of a route rule — `services` (a weighted split),
// `healthCheck` and `sticky` — and their parsers. Part of the key schema
// (route-keys.ts calls these); each returns a reason naming the field when a
// value is unusable, never throws.
import { SERVICE_NAME } from './service-name.ts';

export interface WeightedService {
  readonly service: string;
  /** Relative share, 0..100; a service at 0 takes no new requests (but keeps its sticky clients). */
  readonly weight: number;
}

export interface HealthCheckSpec {
  /** A connect check instead of an HTTP request. */
  readonly tcp: boolean;
  /** The HTTP check's path (and query). */
  readonly path: string;
  /** ms between checks of one backend (each jittered down by up to 10%). */
  readonly interval: number;
  /** ms an HTTP check or a connect may take. */
  readonly timeout: number;
  /** Consecutive failed checks that take a backend out of rotation. */
  readonly unhealthyAfter: number;
  /** Consecutive passed checks that bring it back. */
  readonly healthyAfter: number;
  /** The statuses that pass, as written (`2xx`, `200,204`, `2xx,3xx`)… */
  readonly expect: string;
  /** …and as inclusive [low, high] ranges. */
  readonly expectRanges: readonly (readonly [number, number])[];
}

export interface StickyPolicy {
  /** The cookie's name. */
  readonly cookie: string;
  /** The cookie's Max-Age, seconds. */
  readonly ttl: number;
}

export interface MirrorPolicy {
  /** The service that gets copies. */
  readonly service: string;
  /** The share of the route's requests copied, 1..100. */
  readonly percent: number;
}

const MAX_SPLIT = 16;
const COOKIE_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const CHECK_PATH = /^\/[\x21-\x7e]*$/;

/** `"services": [{"service", "weight"}]`: 1..16 distinct services, weights 0..100, at least one above 0. */
export function parseServices(value: unknown): WeightedService[] | string {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_SPLIT) return `"services" must be an array of 1..${MAX_SPLIT} {"service", "weight"} objects`;
  const seen = new Set<string>();
  const services: WeightedService[] = [];
  for (const [i, entry] of value.entries()) {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return `"services[${i}]" must be an object {"service", "weight"}`;
    const { service, weight = 1, ...unknown } = entry as Record<string, unknown>;
    if (Object.keys(unknown).length > 0) return `unknown field ${JSON.stringify(Object.keys(unknown)[0])} in "services[${i}]" (known: service, weight)`;
    if (typeof service !== 'string' || !SERVICE_NAME.test(service)) return `"services[${i}].service" must name a service`;
    if (seen.has(service)) return `"services" names ${JSON.stringify(service)} twice`;
    if (!Number.isInteger(weight) || (weight as number) < 0 || (weight as number) > 100) return `"services[${i}].weight" must be an integer 0..100`;
    seen.add(service);
    services.push({ service, weight: weight as number });
  }
  if (services.every((s) => s.weight === 0)) return '"services" needs a weight above 0';
  return services;
}

/** `"healthCheck": {"path", "interval", "timeout", "unhealthyAfter", "healthyAfter", "expect", "tcp"}`; absent = none. */
export function parseHealthCheck(value: unknown): HealthCheckSpec | null | string {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) return '"healthCheck" must be an object {"path", "interval", "timeout", "unhealthyAfter", "healthyAfter", "expect", "tcp"}';
  const { path = '/healthz', interval = '5s', timeout = '2s', unhealthyAfter = 2, healthyAfter = 2, expect = '2xx', tcp = false, ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown healthCheck field ${JSON.stringify(Object.keys(unknown)[0])} (known: path, interval, timeout, unhealthyAfter, healthyAfter, expect, tcp)`;
  if (typeof tcp !== 'boolean') return '"healthCheck.tcp" must be true or false';
  if (typeof path !== 'string' || !CHECK_PATH.test(path) || path.length > 1024) return '"healthCheck.path" must start with / and be printable ASCII';
  const intervalMs = durationField('healthCheck.interval', interval, 100, 3_600_000);
  if (typeof intervalMs === 'string') return intervalMs;
  const timeoutMs = durationField('healthCheck.timeout', timeout, 10, 60_000);
  if (typeof timeoutMs === 'string') return timeoutMs;
  if (timeoutMs > intervalMs) return '"healthCheck.timeout" must not exceed "healthCheck.interval"';
  for (const [name, n] of [['unhealthyAfter', unhealthyAfter], ['healthyAfter', healthyAfter]] as const) {
    if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 100) return `"healthCheck.${name}" must be an integer 1..100`;
  }
  if (typeof expect !== 'string') return '"healthCheck.expect" must be a string of statuses or classes, e.g. "2xx" or "200,204"';
  const expectRanges: [number, number][] = [];
  for (const part of expect.split(',')) {
    const item = part.trim().toLowerCase();
    const cls = /^([1-5])xx$/.exec(item);
    if (cls) expectRanges.push([Number(cls[1]) * 100, Number(cls[1]) * 100 + 99]);
    else if (/^[1-5]\d\d$/.test(item)) expectRanges.push([Number(item), Number(item)]);
    else return `"healthCheck.expect": ${JSON.stringify(part.trim())} is neither a status (200) nor a class (2xx)`;
  }
  return { tcp, path, interval: intervalMs, timeout: timeoutMs, unhealthyAfter: unhealthyAfter as number, healthyAfter: healthyAfter as number, expect, expectRanges };
}

/** `"sticky": {"cookie", "ttl"}` or `true`; absent = none. */
export function parseSticky(value: unknown): StickyPolicy | null | string {
  if (value === undefined || value === null || value === false) return null;
  if (value === true) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) return '"sticky" must be an object {"cookie", "ttl"}';
  const { cookie = 'tug_sticky', ttl = '1h', ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown sticky field ${JSON.stringify(Object.keys(unknown)[0])} (known: cookie, ttl)`;
  if (typeof cookie !== 'string' || !COOKIE_NAME.test(cookie)) return '"sticky.cookie" must be a cookie name (an HTTP token, up to 64 characters)';
  const ttlMs = durationField('sticky.ttl', ttl, 1000, 400 * 24 * 3_600_000);
  if (typeof ttlMs === 'string') return ttlMs;
  return { cookie, ttl: Math.floor(ttlMs / 1000) };
}

/** `"mirror": {"service", "percent"}`; absent = none. */
export function parseMirror(value: unknown): MirrorPolicy | null | string {
  if (value === undefined || value === null || value === false) return null;
  if (typeof value !== 'object' || Array.isArray(value)) return '"mirror" must be an object {"service", "percent"}';
  const { service, percent = 100, ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown mirror field ${JSON.stringify(Object.keys(unknown)[0])} (known: service, percent)`;
  if (typeof service !== 'string' || !SERVICE_NAME.test(service)) return '"mirror.service" must name a service';
  if (!Number.isInteger(percent) || (percent as number) < 1 || (percent as number) > 100) return '"mirror.percent" must be an integer 1..100';
  return { service, percent: percent as number };
}

/** A duration as `"2s"`, `"500ms"`, `"1h"` or a number of ms, within [min, max] ms. */
function durationField(name: string, value: unknown, min: number, max: number): number | string {
  const match = typeof value === 'number' ? [String(value), String(value), 'ms'] : typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value.trim()) : null;
  const ms = match === null ? NaN : Math.round(Number(match[1]) * ({ ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as Record<string, number>)[match[2]]);
  if (!Number.isFinite(ms) || ms < min || ms > max) return `"${name}" must be a duration like "500ms", "2s" or "1h" (or ms), ${min}ms..${max / 1000}s`;
  return ms;
}
