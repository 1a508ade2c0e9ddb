// `cors`: Cross-Origin Resource Sharing answered by the router. A preflight
// (OPTIONS with Origin and Access-Control-Request-Method) never reaches the
// backend: 204 with the allowed methods, headers and max-age for an allowed
// origin, 403 otherwise. An actual request from an allowed origin gets
// Access-Control-Allow-Origin (and -Credentials) on its response, replacing the
// backend's; the origin is echoed (with Vary: Origin) unless "*" is allowed
// without credentials.
import { headerValue } from './header-edits.ts';
import { refusal, type LocalAnswer } from './local-answer.ts';

export interface CorsSpec {
  /** Allowed origins (scheme://host[:port]), or ["*"]. */
  readonly origins: readonly string[];
  readonly methods: readonly string[];
  readonly headers: readonly string[];
  readonly credentials: boolean;
  /** Seconds a browser may cache a preflight; 0: not said. */
  readonly maxAge: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseCors(value: unknown): CorsSpec | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"cors" must be an object {"origins", "methods"?, "headers"?, "credentials"?, "maxAge"?}';
  const { origins, methods = ['GET', 'HEAD', 'POST'], headers = [], credentials = false, maxAge = 0, ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown cors field ${JSON.stringify(Object.keys(unknown)[0])} (known: origins, methods, headers, credentials, maxAge)`;
  if (!Array.isArray(origins) || origins.length === 0 || !origins.every((o) => typeof o === 'string' && (o === '*' || /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$/.test(o)))) {
    return '"cors.origins" must be a non-empty array of origins like "https://app.example.com", or ["*"]';
  }
  if (origins.includes('*') && origins.length > 1) return '"cors.origins": "*" allows every origin; list it alone';
  if (!Array.isArray(methods) || methods.length === 0 || !methods.every((m) => typeof m === 'string' && TOKEN.test(m))) return '"cors.methods" must be a non-empty array of methods';
  if (!Array.isArray(headers) || !headers.every((h) => typeof h === 'string' && TOKEN.test(h))) return '"cors.headers" must be an array of field names';
  if (typeof credentials !== 'boolean') return '"cors.credentials" must be true or false';
  if (!Number.isInteger(maxAge) || (maxAge as number) < 0 || (maxAge as number) > 86_400) return '"cors.maxAge" must be seconds, 0..86400';
  return { origins: origins.map((o: string) => o.toLowerCase()), methods: methods.map((m: string) => m.toUpperCase()), headers: headers.map((h: string) => h.toLowerCase()), credentials, maxAge: maxAge as number };
}


export class Cors {
  readonly #any: boolean;
  readonly #origins: ReadonlySet<string>;
  readonly #credentials: boolean;
  /** The preflight's fields after Access-Control-Allow-Origin. */
  readonly #preflight: readonly string[];
  readonly #denied = refusal(403, 'CORS origin not allowed', ['vary', 'Origin']);

  constructor(spec: CorsSpec) {
    this.#any = spec.origins[0] === '*';
    this.#origins = new Set(spec.origins);
    this.#credentials = spec.credentials;
    const fields = ['access-control-allow-methods', spec.methods.join(', ')];
    if (spec.headers.length > 0) fields.push('access-control-allow-headers', spec.headers.join(', '));
    if (spec.maxAge > 0) fields.push('access-control-max-age', String(spec.maxAge));
    this.#preflight = fields;
  }

  /** The request's Origin when the route allows it, else null (no CORS fields on the response). */
  allowedOrigin(headers: readonly string[]): string | null {
    const origin = headerValue(headers, 'origin');
    if (origin === null) return null;
    return this.#any || this.#origins.has(origin.toLowerCase()) ? origin : null;
  }

  /** The router's answer to a preflight, or null when the request is not one. */
  preflight(method: string, headers: readonly string[]): LocalAnswer | null {
    if (method !== 'OPTIONS' || headerValue(headers, 'access-control-request-method') === null) return null;
    const origin = this.allowedOrigin(headers);
    if (origin === null) return headerValue(headers, 'origin') === null ? null : this.#denied;
    return { status: 204, fields: [...this.allowFields(origin), ...this.#preflight], body: '', reason: 'CORS preflight' };
  }

  /** Fields naming the allowed origin (and credentials), with Vary when the origin is echoed. */
  allowFields(origin: string): string[] {
    const echo = !this.#any || this.#credentials;
    const fields = ['access-control-allow-origin', echo ? origin : '*'];
    if (this.#credentials) fields.push('access-control-allow-credentials', 'true');
    if (echo) fields.push('vary', 'Origin');
    return fields;
  }
}

/** Backend fields a CORS answer replaces. */
export const CORS_FIELDS: readonly string[] = ['access-control-allow-origin', 'access-control-allow-credentials'];
