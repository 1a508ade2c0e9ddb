// A response the router writes itself instead of a backend (a middleware's
// 401/403/413/429 or CORS preflight 204, an ACME HTTP-01 key authorization):
// status, extra fields and a short text body. Each protocol adapter writes it
// the way it writes the router's other local replies (HTTP/1.1 head bytes, an
// HTTP/2 HEADERS frame, a raw reply on a WebSocket upgrade).
import { statusText } from '../core/upstream-errors.ts';

export interface LocalAnswer {
  readonly status: number;
  /** Extra fields, flat [name, value, ...], lowercase names. */
  readonly fields: readonly string[];
  /** The body ('' for none: a 204 gets neither Content-Type nor Content-Length). */
  readonly body: string;
  /** Why the router answered, for the access log. */
  readonly reason: string;
}

/** A refusal with the one-line text body of the router's other errors. */
export function refusal(status: number, reason: string, fields: readonly string[] = []): LocalAnswer {
  return { status, fields: ['cache-control', 'no-store', ...fields], body: `${status} ${statusText[status] ?? 'Error'}\n`, reason };
}
