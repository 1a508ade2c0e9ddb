// Sticky sessions (a route's `"sticky"`): the client carries a cookie naming
// its backend's address, signed with the cluster's key (etcd
// /cluster/sticky-key), so any worker of any router honours it and nobody can
// forge a pin to an address of their choice. A cookie whose backend left the
// route's services, is ejected or fails its health checks is ignored: the
// request is balanced as usual and the response pins the new backend.
// The rule for which response carries the cookie (withStickyPin) is written
// here once: every response of the exchange (HTTP/1.1, HTTP/2) and a
// WebSocket's 101 get it from this one function.
// Costs nothing on routes without "sticky" (one comparison with null).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Backend } from '../table/backend.ts';
import { withFields, type ResponseEdits } from './response-edits.ts';
import type { Route } from '../table/route-table.ts';
import type { ServicePool } from '../table/service-pool.ts';

export interface Pin {
  readonly pool: ServicePool;
  readonly backend: Backend;
}

/** base64url characters of the HMAC-SHA256 kept in the cookie (132 bits). */
const SIGNATURE_LENGTH = 22;
const SEPARATOR = '~';

/** The backend the request's cookie pins, when the signature holds and the backend serves the route and is in rotation. */
export function pinnedBackend(route: Route, headers: readonly string[], key: Buffer | null, now: number): Pin | null {
  if (key === null || route.sticky === null) return null;
  const value = cookieValue(headers, route.sticky.cookie);
  if (value === null) return null;
  const at = value.lastIndexOf(SEPARATOR);
  if (at <= 0) return null;
  const address = value.slice(0, at);
  const given = Buffer.from(value.slice(at + 1), 'latin1');
  const expected = Buffer.from(sign(key, address), 'latin1');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  const pools = route.split === null ? [route.pool] : route.split.pools;
  for (const pool of pools) {
    const backend = pool.byAddress.get(address);
    if (backend !== undefined) return backend.isAvailable(now) ? { pool, backend } : null;
  }
  return null;
}

/**
 * The edits of a response `backend` gives on a sticky route: `edits` plus the Set-Cookie pinning it,
 * unless the request's cookie already pinned this very backend (`pinned`) or no key arrived yet.
 * `secure`: the client came over TLS (the cookie gets `Secure`).
 */
export function withStickyPin(route: Route, backend: Backend, pinned: Backend | null, key: Buffer | null, secure: boolean, edits: ResponseEdits | null): ResponseEdits | null {
  if (route.sticky === null || backend === pinned) return edits;
  const cookie = stickyCookieField(route, backend, key, secure);
  return cookie === null ? edits : withFields(edits, cookie);
}

/** The Set-Cookie response field pinning `backend`, flat [name, value]; null without a key. */
function stickyCookieField(route: Route, backend: Backend, key: Buffer | null, secure: boolean): string[] | null {
  if (key === null || route.sticky === null) return null;
  const { cookie, ttl } = route.sticky;
  return ['set-cookie', `${cookie}=${backend.address}${SEPARATOR}${sign(key, backend.address)}; Max-Age=${ttl}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`];
}

function sign(key: Buffer, address: string): string {
  return createHmac('sha256', key).update(address).digest('base64url').slice(0, SIGNATURE_LENGTH);
}

/** The value of cookie `name` among the request's Cookie fields (flat [name, value] list), or null. */
function cookieValue(headers: readonly string[], name: string): string | null {
  for (let i = 0; i < headers.length; i += 2) {
    const field = headers[i];
    if (field.length !== 6 || field.toLowerCase() !== 'cookie') continue;
    for (const pair of headers[i + 1].split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let value = pair.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
  }
  return null;
}
