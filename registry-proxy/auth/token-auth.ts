// Token authentication (`--auth token`), as distribution implements the
// Docker registry token specification: a client without a token gets 401
// with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, fetches a token
// for that scope from the realm (an issuer such as `tug registry
// token-server`), and sends it as `Authorization: Bearer`. The registry
// checks its signature against --token-keys, its issuer, its audience (this
// registry's service name), its validity (exp/nbf, with a small leeway for
// clocks), and then allows what its `access` claim lists, per repository.
import type { IncomingMessage } from 'node:http';
import { errors, jwtVerify, decodeProtectedHeader, type JWTPayload } from 'jose';
import type { Authenticator, Needed } from './access-gate.ts';
import { RegistryError } from '../registry-errors.ts';
import type { RequestAccess } from './request-access.ts';
import { tokenAccess } from './token-access.ts';
import type { VerificationKey } from './token-keys.ts';

/** Leeway for the clocks of the issuer and the registry. */
const CLOCK_TOLERANCE_S = 30;

export interface TokenAuthOptions {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly keys: readonly VerificationKey[];
}

export class TokenAuthenticator implements Authenticator {
  readonly #options: TokenAuthOptions;

  constructor(options: TokenAuthOptions) {
    this.#options = options;
  }

  async authenticate(req: IncomingMessage): Promise<RequestAccess | null> {
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)\s*$/i.exec(header);
    if (!match) return null; // e.g. Basic credentials meant for the realm: ask for a token
    const payload = await this.#verify(match[1]);
    if (!payload) throw this.challenge(null, 'invalid_token');
    return tokenAccess(typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : null, payload.access);
  }

  challenge(needed: Needed | null, error?: string): RegistryError {
    const scope = needed === null ? null : needed === 'catalog' ? 'registry:catalog:*' : `repository:${needed.repository}:${needed.actions.join(',')}`;
    const params = [`realm="${this.#options.realm}"`, `service="${this.#options.service}"`];
    if (scope) params.push(`scope="${scope}"`);
    if (error) params.push(`error="${error}"`);
    return new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': `Bearer ${params.join(',')}` } });
  }

  /** A token without the scope: 401 asking for one with it (clients fetch a new token and retry). */
  denied(needed: Needed): RegistryError {
    return this.challenge(needed, 'insufficient_scope');
  }

  async #verify(token: string): Promise<JWTPayload | null> {
    let kid: string | undefined;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      return null;
    }
    const named = this.#options.keys.filter((k) => kid !== undefined && k.kids.includes(kid));
    for (const candidate of named.length > 0 ? named : this.#options.keys) {
      try {
        const { payload } = await jwtVerify(token, candidate.key, {
          issuer: this.#options.issuer,
          audience: this.#options.service,
          algorithms: [...candidate.algorithms],
          clockTolerance: CLOCK_TOLERANCE_S,
          requiredClaims: ['exp'],
        });
        return payload;
      } catch (err) {
        // Another key may have signed it; any other failure (expired, wrong audience…) is final.
        if (!(err instanceof errors.JWSSignatureVerificationFailed || err instanceof errors.JOSEAlgNotAllowed)) return null;
      }
    }
    return null;
  }
}
