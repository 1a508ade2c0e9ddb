// The credentials of an `Authorization: Basic` header, and the memory of those
// that passed a check. bcrypt is deliberately slow and one page load or one
// `docker pull` makes dozens of requests with the same header: a success is
// remembered for a few minutes (by a hash of the header, never the password),
// a failure never is. Shared by the registry and the router's basicAuth.
import { createHash } from 'node:crypto';

const REMEMBER_MS = 5 * 60_000;
const MAX_REMEMBERED = 1000;
const BASIC = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i;

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
  /** What the memory is keyed by: a hash of the encoded credentials. */
  readonly key: string;
}

/** The credentials of a header value; null when they are empty (`:`, what some clients send when they have none); 'malformed' otherwise. */
export function parseBasicAuthorization(header: string): BasicCredentials | null | 'malformed' {
  const match = BASIC.exec(header);
  if (!match) return 'malformed';
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  if (decoded === ':') return null;
  const colon = decoded.indexOf(':');
  if (colon <= 0) return 'malformed';
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1), key: createHash('sha256').update(match[1]).digest('hex') };
}

/** Credentials that passed a check recently (bounded: the oldest goes first). */
export class CredentialMemory {
  readonly #remembered = new Map<string, { user: string; until: number }>();

  /** The user of credentials that passed within REMEMBER_MS, or null. */
  recall(key: string, now: number): string | null {
    const known = this.#remembered.get(key);
    return known !== undefined && known.until > now ? known.user : null;
  }

  remember(key: string, user: string, now: number): void {
    if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.delete(this.#remembered.keys().next().value!);
    this.#remembered.set(key, { user, until: now + REMEMBER_MS });
  }
}
