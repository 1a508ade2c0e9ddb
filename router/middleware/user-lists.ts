// The user lists a worker's basicAuth checks against: a route's inline
// `users`, or a shared list under `<prefix>/auth/<name>` that routes name with
// `usersKey`. A shared list is parsed once per change per worker, however many
// routes refer to it, and swapped in one assignment: every route referring to
// it sees the new users from its next request, with no route re-put, and
// forgets the credentials it remembered under the old ones.
// Never: let a request through when a referenced list is missing (fail closed).
import { CredentialMemory } from '../../common/basic-credentials.ts';
import { ConcurrencyLimit } from '../../common/concurrency-limit.ts';
import { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { refusal, type LocalAnswer } from './local-answer.ts';

/** The `<name>` of `<prefix>/auth/<name>`, as a route's `usersKey` gives it. */
export const USER_LIST_NAME = /^[^/\s]{1,128}$/;

/** Checks a list's htpasswd text (bcrypt only, the inline form's parser); its user count, or a reason. */
export function checkUserList(text: string): number | string {
  const users = HtpasswdUsers.parse(text, UNUSED_LIMIT);
  return typeof users === 'string' ? users : users.size;
}

const UNUSED_LIMIT = new ConcurrencyLimit(1, 0);

/** One version of a list: its users and the successes remembered against exactly them. */
export interface UserList {
  readonly users: HtpasswdUsers;
  readonly memory: CredentialMemory;
}

/** What a route's basicAuth holds: the current list, or null and the refusal that says why. */
export class UserListSlot {
  current: UserList | null;
  /** The answer while `current` is null (503: the router cannot tell who may pass, and a 401 would invite retries that cannot succeed). */
  unavailable: LocalAnswer;

  constructor(current: UserList | null, unavailable: LocalAnswer) {
    this.current = current;
    this.unavailable = unavailable;
  }

  /** A route's own inline list: never changes, never unavailable. */
  static fixed(users: HtpasswdUsers): UserListSlot {
    return new UserListSlot({ users, memory: new CredentialMemory() }, refusal(503, 'basicAuth: no user list'));
  }
}

export class UserLists {
  /** `<prefix>/auth/`, to name the key in the access log. */
  readonly #prefix: string;
  readonly #limit: ConcurrencyLimit;
  /** Kept for names routes refer to before (or after) the key exists: a slot is a few fields, routes are bounded by etcd. */
  readonly #slots = new Map<string, UserListSlot>();

  constructor(authPrefix: string, limit: ConcurrencyLimit) {
    this.#prefix = authPrefix;
    this.#limit = limit;
  }

  /** The slot of `name`, shared by every route that refers to it. */
  slot(name: string): UserListSlot {
    let slot = this.#slots.get(name);
    if (slot === undefined) {
      slot = new UserListSlot(null, refusal(503, `basicAuth: user list ${this.#prefix}${name} does not exist or has no valid value`));
      this.#slots.set(name, slot);
    }
    return slot;
  }

  /**
   * A list put (htpasswd text, checked by the primary) or deleted (null). Text this worker cannot
   * parse (the primary checked it, so only a version mismatch could) keeps the previous list.
   */
  set(name: string, text: string | null): void {
    const slot = this.slot(name);
    if (text === null) {
      slot.current = null;
      slot.unavailable = refusal(503, `basicAuth: user list ${this.#prefix}${name} was deleted`);
      return;
    }
    const users = HtpasswdUsers.parse(text, this.#limit);
    if (typeof users === 'string') return;
    slot.current = { users, memory: new CredentialMemory() };
  }
}
