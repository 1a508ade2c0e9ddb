// What `tug registry token-server` grants and signs: of the scopes a client
// asks for, the actions the ACL allows its user (or an anonymous client), as
// a JWT with the claims distribution checks (iss, sub, aud, exp, nbf, iat,
// jti, access; `aud` a single string, as distribution 2.x reads it) and the
// signing key's libtrust id as `kid`, so distribution accepts them too.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { ACTIONS, type AccessPolicy } from '../auth/access-policy.ts';
import { isRepositoryName } from '../references.ts';
import { parseScope, type AccessEntry } from '../auth/token-access.ts';
import type { SigningKey } from '../auth/token-keys.ts';

/** A token is valid from a little before it is issued, for clocks slightly behind. */
const NOT_BEFORE_SLACK_S = 10;

export interface IssuedToken {
  readonly token: string;
  readonly expiresIn: number;
  readonly issuedAt: string;
}

export class TokenIssuer {
  readonly #key: SigningKey;
  readonly #issuer: string;
  readonly #service: string;
  readonly #expirySeconds: number;
  readonly #policy: AccessPolicy;

  constructor(key: SigningKey, issuer: string, service: string, expiryMs: number, policy: AccessPolicy) {
    this.#key = key;
    this.#issuer = issuer;
    this.#service = service;
    this.#expirySeconds = Math.floor(expiryMs / 1000);
    this.#policy = policy;
  }

  /** Of `scopes`, what `user` (null: anonymous) gets; scopes it gets nothing of, or cannot parse, are left out. */
  grant(user: string | null, scopes: readonly string[]): AccessEntry[] {
    const repositories = new Map<string, Set<string>>();
    let catalog = false;
    for (const scope of scopes) {
      const asked = parseScope(scope);
      if (!asked) continue;
      if (asked.type === 'repository' && isRepositoryName(asked.name)) {
        const actions = this.#policy.granted(user, asked.name, asked.actions.includes('*') ? ACTIONS : asked.actions);
        if (actions.length > 0) repositories.set(asked.name, new Set([...(repositories.get(asked.name) ?? []), ...actions]));
      } else if (asked.type === 'registry' && asked.name === 'catalog' && asked.actions.includes('*')) {
        // The whole catalog only for who may pull every repository: it names them all.
        catalog ||= user !== null && this.#policy.allowsEverywhere(user, 'pull');
      }
    }
    const entries: AccessEntry[] = [...repositories].map(([name, actions]) => ({ type: 'repository', name, actions: ACTIONS.filter((a) => actions.has(a)) }));
    return catalog ? [...entries, { type: 'registry', name: 'catalog', actions: ['*'] }] : entries;
  }

  async issue(user: string | null, access: readonly AccessEntry[]): Promise<IssuedToken> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ access })
      .setProtectedHeader({ alg: this.#key.algorithm, kid: this.#key.kid, typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setSubject(user ?? '')
      .setAudience(this.#service)
      .setIssuedAt(now)
      .setNotBefore(now - NOT_BEFORE_SLACK_S)
      .setExpirationTime(now + this.#expirySeconds)
      .setJti(randomUUID())
      .sign(this.#key.key);
    return { token, expiresIn: this.#expirySeconds, issuedAt: new Date(now * 1000).toISOString() };
  }
}
