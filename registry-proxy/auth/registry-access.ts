// Builds the registry's AccessGate from its configuration: who authenticates
// clients (nobody, the htpasswd users, or tokens) and what anonymous clients
// may do (everything when nothing is configured; the ACL's anonymous rules;
// nothing with token auth, where even anonymous clients get a token).
import { AccessGate } from './access-gate.ts';
import { AccessPolicy } from './access-policy.ts';
import type { AuthConfig } from './auth-config.ts';
import { BasicAuthenticator } from './basic-auth.ts';
import { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { policyAccess } from './request-access.ts';
import { TokenAuthenticator } from './token-auth.ts';
import { loadVerificationKeys } from './token-keys.ts';

const NOBODY = { user: null, may: () => false, lists: () => false, pullsEverywhere: false };

export async function createAccessGate(config: AuthConfig): Promise<AccessGate> {
  if (config.token) {
    const { realm, service, issuer, keys } = config.token;
    return new AccessGate(new TokenAuthenticator({ realm, service, issuer, keys: await loadVerificationKeys('--token-keys', keys) }), NOBODY, false);
  }
  const policy = config.acl ? await AccessPolicy.load(config.acl) : AccessPolicy.allowAll(config.auth === 'none');
  if (config.htpasswd) {
    const users = await HtpasswdUsers.load('--htpasswd', config.htpasswd, { concurrency: config.authConcurrency, queue: config.authQueue });
    return new AccessGate(new BasicAuthenticator(users, policy), policyAccess(policy, null), policy.grantsAnonymous);
  }
  return new AccessGate(null, policyAccess(policy, null), true);
}
