// `basicAuth`: HTTP basic authentication in front of a route, against the
// rule's htpasswd lines (bcrypt only) or a shared list the rule names by key
// (`usersKey`: `<prefix>/auth/<name>`, user-lists.ts), with the registry's rules
// (common/htpasswd-users.ts): an unknown user costs what a known one does, at
// most a few bcrypt checks run at once per worker (the limit is shared by every
// route of the worker, beyond it 429), and a success is remembered for a few
// minutes (common/basic-credentials.ts) so a signed-in client costs one hash
// lookup per request, not one bcrypt. The Authorization header still goes to
// the backend (remove it with requestHeaders when the backend must not see it).
// A referenced list that is missing refuses every request (503), never admits.
import { parseBasicAuthorization } from '../../common/basic-credentials.ts';
import type { ConcurrencyLimit } from '../../common/concurrency-limit.ts';
import { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { headerValue } from './header-edits.ts';
import { refusal, type LocalAnswer } from './local-answer.ts';
import { checkUserList, USER_LIST_NAME, UserListSlot, type UserLists } from './user-lists.ts';

/** Exactly one of `users` and `usersKey` is set. */
export interface BasicAuthSpec {
  /** htpasswd lines, `user:bcrypt-hash`; null with `usersKey`. */
  readonly users: string | null;
  /** The `<name>` of `<prefix>/auth/<name>`, whose value is the htpasswd lines; null with `users`. */
  readonly usersKey: string | null;
  readonly realm: string;
}

/** bcrypt checks at once in one worker, over all its routes, and how many may wait. */
export const HASH_CHECKS = { concurrency: 2, queue: 64 } as const;
const REALM = /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,100}$/;

export function parseBasicAuth(value: unknown): BasicAuthSpec | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return '"basicAuth" must be an object {"users": "<htpasswd lines>" or "usersKey": "<name under /auth/>", "realm"?}';
  const { users, usersKey, realm = 'tug', ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown basicAuth field ${JSON.stringify(Object.keys(unknown)[0])} (known: users, usersKey, realm)`;
  if (users !== undefined && usersKey !== undefined) return 'give "basicAuth.users" or "basicAuth.usersKey", not both';
  if (typeof realm !== 'string' || !REALM.test(realm)) return '"basicAuth.realm" must be 1-100 printable characters without " or \\';
  if (usersKey !== undefined) {
    if (typeof usersKey !== 'string' || !USER_LIST_NAME.test(usersKey)) return '"basicAuth.usersKey" must be the <name> of a key <prefix>/auth/<name> (no / or spaces)';
    return { users: null, usersKey, realm };
  }
  if (typeof users !== 'string') return '"basicAuth.users" must be htpasswd lines, user:bcrypt-hash (htpasswd -nB), or "basicAuth.usersKey" name a list under /auth/';
  const checked = checkUserList(users);
  if (typeof checked === 'string') return `"basicAuth.users": ${checked}`;
  return { users, usersKey: null, realm };
}

/** What a compiled basicAuth needs from its worker. */
export interface BasicAuthEnv {
  /** The bound on bcrypt checks, over every route of the worker. */
  readonly hashChecks: ConcurrencyLimit;
  /** The shared lists `usersKey` refers to. */
  readonly userLists: UserLists;
}

export class BasicAuth {
  /** The route's users: its own (inline), or the shared slot of its `usersKey`, swapped when the key changes. */
  readonly #slot: UserListSlot;
  readonly #challenge: LocalAnswer;
  readonly #busy = refusal(429, 'too many password checks in progress', ['retry-after', '1']);

  constructor(spec: BasicAuthSpec, env: BasicAuthEnv) {
    this.#slot = spec.usersKey !== null ? env.userLists.slot(spec.usersKey) : UserListSlot.fixed(HtpasswdUsers.parse(spec.users!, env.hashChecks) as HtpasswdUsers);
    this.#challenge = refusal(401, 'basic auth', ['www-authenticate', `Basic realm="${spec.realm}", charset="UTF-8"`]);
  }

  /** null: let the request through; an answer: refuse it; a promise: a bcrypt check runs, which settles to either. */
  check(headers: readonly string[]): LocalAnswer | Promise<LocalAnswer | null> | null {
    // One read: a check in flight finishes against the list it started with and remembers into that list's memory only.
    const list = this.#slot.current;
    if (list === null) return this.#slot.unavailable;
    const header = headerValue(headers, 'authorization');
    if (header === null) return this.#challenge;
    const credentials = parseBasicAuthorization(header);
    if (credentials === null || credentials === 'malformed') return this.#challenge;
    if (list.memory.recall(credentials.key, Date.now()) !== null) return null;
    return list.users.verify(credentials.user, credentials.password, () => new TooManyChecks()).then(
      (valid) => {
        if (!valid) return this.#challenge;
        list.memory.remember(credentials.key, credentials.user, Date.now());
        return null;
      },
      (err: unknown) => (err instanceof TooManyChecks ? this.#busy : this.#challenge),
    );
  }
}

class TooManyChecks extends Error {}
