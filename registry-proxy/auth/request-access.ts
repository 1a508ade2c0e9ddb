// What one request may do, whoever decided it (the ACL for basic auth and
// anonymous clients, a token's claims for token auth). Handlers that act on a
// second repository (a mount's `from`) or list repositories (the catalog) ask
// it; the gate asks it for the request's own repository before the handler runs.
import type { AccessPolicy, Action } from './access-policy.ts';

export interface RequestAccess {
  /** The signed-in user, or null for an anonymous client. */
  readonly user: string | null;
  may(repository: string, action: Action): boolean;
  /** Whether the catalog may name `repository` to this client. */
  lists(repository: string): boolean;
  /** Whether this client may pull every repository (a mount without `from` may then take a blob from anywhere). */
  readonly pullsEverywhere: boolean;
}

/** The access an ACL gives `user` (null: anonymous). */
export function policyAccess(policy: AccessPolicy, user: string | null): RequestAccess {
  return {
    user,
    may: (repository, action) => policy.allows(user, repository, action),
    lists: (repository) => policy.allows(user, repository, 'pull'),
    pullsEverywhere: policy.allowsEverywhere(user, 'pull'),
  };
}
