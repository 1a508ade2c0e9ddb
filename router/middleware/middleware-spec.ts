// The middleware fields of a route rule, parsed and validated (every value,
// with a reason that names the key) into plain JSON-safe values: the primary
// parses them from etcd and sends them to the workers, which compile them once
// per rule (route-middlewares.ts). A rule without any of these fields has no
// middlewares at all (null), and costs nothing per request.
import { parseSize } from '../../common/units.ts';
import { parseBasicAuth, type BasicAuthSpec } from './basic-auth.ts';
import { parseCompress, type CompressSpec } from './compression.ts';
import { parseCors, type CorsSpec } from './cors.ts';
import { parseHeaderEdits, type HeaderEditsSpec } from './header-edits.ts';
import { parseCidrList } from './ip-filter.ts';
import { parsePrefix } from './path-rewrite.ts';
import { parseRateLimit, type RateLimitSpec } from './rate-limit.ts';

export interface MiddlewareSpec {
  readonly stripPrefix: string | null;
  readonly addPrefix: string | null;
  readonly requestHeaders: HeaderEditsSpec | null;
  readonly responseHeaders: HeaderEditsSpec | null;
  readonly allow: readonly string[] | null;
  readonly deny: readonly string[] | null;
  readonly basicAuth: BasicAuthSpec | null;
  readonly rateLimit: RateLimitSpec | null;
  readonly compress: CompressSpec | null;
  readonly cors: CorsSpec | null;
  /** Bytes; null: no limit. */
  readonly maxBodySize: number | null;
}

export const MIDDLEWARE_FIELDS: readonly string[] = ['stripPrefix', 'addPrefix', 'requestHeaders', 'responseHeaders', 'allow', 'deny', 'basicAuth', 'rateLimit', 'compress', 'cors', 'maxBodySize'];

/** The rule's middlewares; null when it names none; a reason naming the key when one is invalid. */
export function parseMiddlewares(rule: Readonly<Record<string, unknown>>): MiddlewareSpec | null | string {
  if (!MIDDLEWARE_FIELDS.some((field) => rule[field] !== undefined)) return null;
  const strip = rule.stripPrefix === undefined ? null : parsePrefix('stripPrefix', rule.stripPrefix);
  if (typeof strip === 'string') return strip;
  const add = rule.addPrefix === undefined ? null : parsePrefix('addPrefix', rule.addPrefix);
  if (typeof add === 'string') return add;
  const requestHeaders = rule.requestHeaders === undefined ? null : parseHeaderEdits('requestHeaders', rule.requestHeaders);
  if (typeof requestHeaders === 'string') return requestHeaders;
  const responseHeaders = rule.responseHeaders === undefined ? null : parseHeaderEdits('responseHeaders', rule.responseHeaders);
  if (typeof responseHeaders === 'string') return responseHeaders;
  const allow = rule.allow === undefined ? null : parseCidrList('allow', rule.allow);
  if (typeof allow === 'string') return allow;
  const deny = rule.deny === undefined ? null : parseCidrList('deny', rule.deny);
  if (typeof deny === 'string') return deny;
  const basicAuth = rule.basicAuth === undefined ? null : parseBasicAuth(rule.basicAuth);
  if (typeof basicAuth === 'string') return basicAuth;
  const rateLimit = rule.rateLimit === undefined ? null : parseRateLimit(rule.rateLimit);
  if (typeof rateLimit === 'string') return rateLimit;
  const compress = parseCompress(rule.compress);
  if (typeof compress === 'string') return compress;
  const cors = rule.cors === undefined ? null : parseCors(rule.cors);
  if (typeof cors === 'string') return cors;
  let maxBodySize: number | null = null;
  if (rule.maxBodySize !== undefined) {
    if (typeof rule.maxBodySize !== 'string' && typeof rule.maxBodySize !== 'number') return '"maxBodySize" must be a size like "10MiB" or bytes';
    try {
      maxBodySize = parseSize('"maxBodySize"', rule.maxBodySize);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return { stripPrefix: strip?.prefix ?? null, addPrefix: add?.prefix ?? null, requestHeaders, responseHeaders, allow, deny, basicAuth, rateLimit, compress, cors, maxBodySize };
}

/** What `/routes` shows of a shared user list a route refers to. */
export interface UserListView {
  /** The full etcd key. */
  readonly key: string;
  /** Whether it holds a valid list now (false: the route refuses every request, 503). */
  readonly resolves: boolean;
  readonly userCount: number;
}

/**
 * The spec as the admin `/routes` shows it: inline password hashes replaced by the user names; a
 * `usersKey` with its key, whether it resolves and its user count (never the hashes).
 */
export function redactMiddlewares(spec: MiddlewareSpec, userList: (name: string) => UserListView): object {
  const auth = spec.basicAuth;
  if (auth === null) return spec;
  if (auth.usersKey !== null) return { ...spec, basicAuth: { usersKey: auth.usersKey, realm: auth.realm, ...userList(auth.usersKey) } };
  return { ...spec, basicAuth: { users: userNames(auth.users!), realm: auth.realm } };
}

/** The spec with each inline password hash replaced by a placeholder (for views typed as the spec, like `tug status`). */
export function withoutHashes(spec: MiddlewareSpec): MiddlewareSpec {
  const auth = spec.basicAuth;
  if (auth === null || auth.users === null) return spec;
  return { ...spec, basicAuth: { ...auth, users: userNames(auth.users).map((user) => `${user}:(hash hidden)`).join('\n') } };
}

function userNames(htpasswd: string): string[] {
  return htpasswd.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.slice(0, l.indexOf(':')));
}
