// `basicAuth`: HTTP basic authentication in front of a route, against the
// rule's htpasswd lines (bcrypt only), with the registry's rules
// (common/htpasswd-users.ts): an unknown user costs what a known one does, at
// most a few bcrypt checks run at once per worker (the limit is shared by every
// route of the worker, beyond it 429), and a success is remembered for a few
// minutes (common/basic-credentials.ts) so a signed-in client costs one hash
// lookup per request, not one bcrypt. The Authorization header still goes to
// the backend (remove it with requestHeaders when the backend must not see it).
import { CredentialMemory, parseBasicAuthorization } from '../../common/basic-credentials.ts';
import { ConcurrencyLimit } from '../../common/concurrency-limit.ts';
import { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { headerValue } from './header-edits.ts';
import { refusal, type LocalAnswer } from './local-answer.ts';

export interface BasicAuthSpec {
  /** htpasswd lines, `user:bcrypt-hash`. */
  readonly users: string;
  readonly realm: string;
}

/** bcrypt checks at once in one worker, over all its routes, and how many may wait. */
export const HASH_CHECKS = { concurrency: 2, queue: 64 } as const;
const REALM = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,100}$/;

export function parseBasicAuth(value: unknown): BasicAuthSpec | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"basicAuth" must be an object {"users": "<htpasswd lines>", "realm"?}';
  const { users, realm = 'tug', ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown basicAuth field ${JSON.stringify(Object.keys(unknown)[0])} (known: users, realm)`;
  if (typeof users !== 'string') return '"basicAuth.users" must be htpasswd lines, user:bcrypt-hash (htpasswd -nB)';
  const parsed = HtpasswdUsers.parse(users, new ConcurrencyLimit(1, 0));
  if (typeof parsed === 'string') return `"basicAuth.users": ${parsed}`;
  if (typeof realm !== 'string' || !REALM.test(realm)) return '"basicAuth.realm" must be 1-100 printable characters without " or \\';
  return { users, realm };
}

export class BasicAuth {
  readonly #users: HtpasswdUsers;
  readonly #memory = new CredentialMemory();
  readonly #challenge: LocalAnswer;
  readonly #busy = refusal(429, 'too many password checks in progress', ['retry-after', '1']);

  constructor(spec: BasicAuthSpec, limit: ConcurrencyLimit) {
    this.#users = HtpasswdUsers.parse(spec.users, limit) as HtpasswdUsers;
    this.#challenge = refusal(401, 'basic auth', ['www-authenticate', `Basic realm="${spec.realm}", charset="UTF-8"`]);
  }

  /** null: let the request through; an answer: refuse it; a promise: a bcrypt check runs, which settles to either. */
  check(headers: readonly string[]): LocalAnswer | Promise<LocalAnswer | null> | null {
    const header = headerValue(headers, 'authorization');
    if (header === null) return this.#challenge;
    const credentials = parseBasicAuthorization(header);
    if (credentials === null || credentials === 'malformed') return this.#challenge;
    if (this.#memory.recall(credentials.key, Date.now()) !== null) return null;
    return this.#users.verify(credentials.user, credentials.password, () => new TooManyChecks()).then(
      (valid) => {
        if (!valid) return this.#challenge;
        this.#memory.remember(credentials.key, credentials.user, Date.now());
        return null;
      },
      (err: unknown) => (err instanceof TooManyChecks ? this.#busy : this.#challenge),
    );
  }
}

class TooManyChecks extends Error {}
