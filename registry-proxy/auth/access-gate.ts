// The one place a request is let in or turned away, after its route is known
// and before its handler runs: the authenticator says who sent it (or that
// its credentials are wrong), the route says what it needs on which
// repository, and the request's access says whether that is allowed.
// Denied: 401 UNAUTHORIZED with the authenticator's challenge when the client
// sent no credentials and some could help, else what the authenticator says
// (403 DENIED for basic auth; for token auth, as distribution does, a 401
// asking for a token with the missing scope), and 403 DENIED without auth.
import type { IncomingMessage } from 'node:http';
import type { Action } from './access-policy.ts';
import { RegistryError } from '../registry-errors.ts';
import type { RouteMatch } from '../registry-routes.ts';
import type { RequestAccess } from './request-access.ts';
import { routeNeeds } from './route-needs.ts';

/** What a denied client would need: actions on a repository, or the catalog. */
export type Needed = { readonly repository: string; readonly actions: readonly Action[] } | 'catalog';

export interface Authenticator {
  /** The access the request's credentials give; null when it carries none; throws the 401 when they are wrong. */
  authenticate(req: IncomingMessage): Promise<RequestAccess | null>;
  /** The 401 telling a client without credentials how to sign in (for `needed`, when known). */
  challenge(needed: Needed | null): RegistryError;
  /** The answer to a signed-in client its credentials do not allow `needed`: 403 DENIED, or a 401 asking for a better token. */
  denied(needed: Needed): RegistryError;
}

export class AccessGate {
  readonly #authenticator: Authenticator | null;
  readonly #anonymous: RequestAccess;
  readonly #anonymousLists: boolean;

  /**
   * `anonymous`: what a client without credentials may do (everything when
   * nothing is configured; the ACL's anonymous rules; nothing with token auth).
   * `anonymousLists`: whether such a client may read the catalog at all.
   */
  constructor(authenticator: Authenticator | null, anonymous: RequestAccess, anonymousLists: boolean) {
    this.#authenticator = authenticator;
    this.#anonymous = anonymous;
    this.#anonymousLists = anonymousLists;
  }

  async admit(req: IncomingMessage, route: RouteMatch): Promise<RequestAccess> {
    const signedIn = this.#authenticator ? await this.#authenticator.authenticate(req) : null;
    const access = signedIn ?? this.#anonymous;
    // Credentials could help only a client that sent none, to a registry that takes some.
    const couldSignIn = signedIn === null && this.#authenticator !== null;
    const needs = routeNeeds(route.handler);
    if (needs === 'sign-in') {
      if (couldSignIn) throw this.#authenticator!.challenge(null);
      return access;
    }
    if (needs === 'catalog') {
      if (couldSignIn && !this.#anonymousLists) throw this.#authenticator!.challenge('catalog');
      return access;
    }
    const missing = needs.filter((action) => !access.may(route.name, action));
    if (missing.length === 0) return access;
    // Clients ask for pull with push (a push reads blobs too): the challenge names both.
    const needed = { repository: route.name, actions: needs.includes('push') ? ['pull', 'push'] as const : needs };
    if (couldSignIn) throw this.#authenticator!.challenge(needed);
    if (signedIn && this.#authenticator) throw this.#authenticator.denied(needed);
    throw deniedError(needed);
  }
}

/** 403 DENIED, naming what was asked for. */
export function deniedError(needed: Needed): RegistryError {
  return new RegistryError('DENIED', undefined, { detail: needed === 'catalog' ? { catalog: true } : { repository: needed.repository, actions: needed.actions } });
}
