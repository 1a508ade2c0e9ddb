// Sticky sessions (a route's `"sticky"`): the client carries a cookie naming
// its backend's address, signed with the cluster's key (etcd
// /cluster/sticky-key), so any worker of any router honours it and nobody can
// forge a pin to an address of their choice. A cookie whose backend left the
// route's services, is ejected or fails its health checks is ignored: the
// request is balanced as usual and the response pins the new backend.
// Costs nothing on routes without "sticky" (the exchange branches on route.sticky).
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Backend } from '../table/backend.ts';
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

/** The Set-Cookie response field pinning `backend`, flat [name, value]; null without a key. */
export function stickyCookieField(route: Route, backend: Backend, key: Buffer | null, secure: boolean): string[] | null {
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
