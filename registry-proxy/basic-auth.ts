// HTTP basic authentication against the htpasswd users (htpasswd-users.ts),
// needed whenever the registry listens beyond loopback. What a signed-in user
// may do is the ACL's answer (everything without --acl). A successful check
// is remembered for a few minutes, because bcrypt is deliberately slow and
// one `docker pull` makes dozens of requests; a failed one never is.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { AccessPolicy } from './access-policy.ts';
import { deniedError, type Authenticator, type Needed } from './access-gate.ts';
import type { HtpasswdUsers } from './htpasswd-users.ts';
import { RegistryError } from './registry-errors.ts';
import { policyAccess, type RequestAccess } from './request-access.ts';

const REMEMBER_MS = 5 * 60_000;
const MAX_REMEMBERED = 1000;
const REALM = 'Basic realm="tug-registry"';

export class BasicAuthenticator implements Authenticator {
  readonly #users: HtpasswdUsers;
  readonly #policy: AccessPolicy;
  /** sha256 of the Authorization value → user and until when. */
  readonly #remembered = new Map<string, { user: string; until: number }>();

  constructor(users: HtpasswdUsers, policy: AccessPolicy) {
    this.#users = users;
    this.#policy = policy;
  }

  async authenticate(req: IncomingMessage): Promise<RequestAccess | null> {
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!match) throw this.challenge();
    const key = createHash('sha256').update(match[1]).digest('hex');
    const known = this.#remembered.get(key);
    if (known && known.until > Date.now()) return policyAccess(this.#policy, known.user);
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    // Empty credentials are what some clients send when they have none.
    if (decoded === ':') return null;
    if (colon <= 0) throw this.challenge();
    const user = decoded.slice(0, colon);
    if (!(await this.#users.verify(user, decoded.slice(colon + 1)))) throw this.challenge();
    if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.delete(this.#remembered.keys().next().value!);
    this.#remembered.set(key, { user, until: Date.now() + REMEMBER_MS });
    return policyAccess(this.#policy, user);
  }

  denied(needed: Needed): RegistryError {
    return deniedError(needed);
  }

  challenge(): RegistryError {
    return new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': REALM } });
  }
}
