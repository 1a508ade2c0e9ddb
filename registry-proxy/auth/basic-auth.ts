// HTTP basic authentication against the htpasswd users (htpasswd-users.ts),
// needed whenever the registry listens beyond loopback. What a signed-in user
// may do is the ACL's answer (everything without --acl). A successful check
// is remembered for a few minutes, because bcrypt is deliberately slow and
// one `docker pull` makes dozens of requests; a failed one never is.
import type { IncomingMessage } from 'node:http';
import { CredentialMemory, parseBasicAuthorization } from '../../common/basic-credentials.ts';
import type { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import type { AccessPolicy } from './access-policy.ts';
import { deniedError, type Authenticator, type Needed } from './access-gate.ts';
import { RegistryError } from '../registry-errors.ts';
import { policyAccess, type RequestAccess } from './request-access.ts';

const REALM = 'Basic realm="tug-registry"';

/** Beyond the bound on concurrent password checks. */
export function tooManyChecks(): RegistryError {
  return new RegistryError('TOOMANYREQUESTS', 'too many password checks in progress; retry', { headers: { 'Retry-After': '1' } });
}

export class BasicAuthenticator implements Authenticator {
  readonly #users: HtpasswdUsers;
  readonly #policy: AccessPolicy;
  readonly #remembered = new CredentialMemory();

  constructor(users: HtpasswdUsers, policy: AccessPolicy) {
    this.#users = users;
    this.#policy = policy;
  }

  async authenticate(req: IncomingMessage): Promise<RequestAccess | null> {
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const credentials = parseBasicAuthorization(header);
    if (credentials === 'malformed') throw this.challenge();
    // Empty credentials are what some clients send when they have none.
    if (credentials === null) return null;
    const known = this.#remembered.recall(credentials.key, Date.now());
    if (known !== null) return policyAccess(this.#policy, known);
    const { user } = credentials;
    if (!(await this.#users.verify(user, credentials.password, tooManyChecks))) throw this.challenge();
    this.#remembered.remember(credentials.key, user, Date.now());
    return policyAccess(this.#policy, user);
  }

  denied(needed: Needed): RegistryError {
    return deniedError(needed);
  }

  challenge(): RegistryError {
    return new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': REALM } });
  }
}
