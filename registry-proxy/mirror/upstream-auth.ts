// How the pull-through cache authenticates to its upstream registry, as
// Docker clients do (the Docker registry token specification): the upstream
// answers 401 with a challenge; `Basic` means send the credentials; `Bearer
// realm=…,service=…,scope=…` means GET the realm with that service and scope
// (with the credentials as basic auth when there are some, anonymously
// otherwise) for a token, then send it as `Authorization: Bearer`. Tokens are
// cached per scope until shortly before they expire, and concurrent requests
// needing a new one share one token request, so a pull costs one token request
// per repository and not one per blob, even when it renews an expired token.
// The token server refusing the credentials is a denial (UpstreamError with
// `denied`), which the client sees as 403 DENIED, not as an outage.
import type { Dispatcher } from 'undici';
import { fetch } from 'undici';
import { UpstreamError } from './upstream-error.ts';

export interface UpstreamCredentials {
  readonly username: string;
  readonly password: string;
}

/** Seconds a token lives when the token server does not say (the specification's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** A token is renewed this long before it expires (at most half its life), so a request never carries one that expires in flight. */
const RENEW_EARLY_MS = 10_000;
/** Tokens kept at most (one per repository scope); the oldest is dropped first. */
const MAX_TOKENS = 1000;
/** Bound on one token request, whoever waits for it. */
const TOKEN_REQUEST_MS = 30_000;

interface CachedToken {
  readonly header: string;
  /** When it is renewed: shortly before it expires. */
  readonly renewAt: number;
}

export class UpstreamAuth {
  readonly #credentials: UpstreamCredentials | null;
  readonly #dispatcher: Dispatcher;
  readonly #tokens = new Map<string, CachedToken>();
  /** Token requests under way, by scope: who needs the same token waits for the same answer. */
  readonly #fetching = new Map<string, Promise<string>>();
  /** Set once the upstream has asked for basic auth: then every request carries it. */
  #basic = false;

  constructor(credentials: UpstreamCredentials | null, dispatcher: Dispatcher) {
    this.#credentials = credentials;
    this.#dispatcher = dispatcher;
  }

  /** The Authorization header to send for `scope` now, if one is known; null to try without. */
  header(scope: string): string | null {
    if (this.#basic) return this.#basicHeader();
    const token = this.#tokens.get(scope);
    if (token && token.renewAt > Date.now()) return token.header;
    return null;
  }

  /**
   * Answers a 401's `WWW-Authenticate` challenge for `scope`: the header to
   * retry with. `rejected` is the header that got the 401: when another
   * request has renewed that token meanwhile, its successor is used as it is.
   */
  async answer(challenge: string | null, scope: string, rejected: string | null, signal?: AbortSignal): Promise<string> {
    const parsed = challenge ? parseChallenge(challenge) : null;
    if (parsed?.scheme === 'basic') {
      if (!this.#credentials) throw new UpstreamError('the upstream registry asks for credentials; the mirror has none (--proxy-username, --proxy-password)', { status: 401, denied: true });
      if (rejected !== null && rejected.startsWith('Basic ')) throw new UpstreamError('the upstream registry refused this mirror\'s credentials (--proxy-username, --proxy-password)', { status: 401, denied: true });
      this.#basic = true;
      return this.#basicHeader();
    }
    const current = this.header(scope);
    if (current !== null && current !== rejected) return current;
    const pending = this.#fetching.get(scope);
    if (pending) return signal ? abortable(pending, signal) : pending;
    // Not the caller's signal: other requests may be waiting for this token.
    const fetching = this.#fetchToken(parsed, challenge, scope).finally(() => this.#fetching.delete(scope));
    this.#fetching.set(scope, fetching);
    return signal ? abortable(fetching, signal) : fetching;
  }

  async #fetchToken(parsed: { scheme: string; params: Record<string, string> } | null, challenge: string | null, scope: string): Promise<string> {
    if (parsed?.scheme !== 'bearer' || !parsed.params.realm) {
      throw new UpstreamError(`the upstream registry answered 401 with an unusable challenge: ${JSON.stringify((challenge ?? '').slice(0, 200))}`, { status: 401 });
    }
    const realm = parsed.params.realm;
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new UpstreamError(`the upstream's token realm is not a URL: ${JSON.stringify(realm.slice(0, 200))}`, { status: 401 });
    }
    if (parsed.params.service) url.searchParams.set('service', parsed.params.service);
    url.searchParams.set('scope', parsed.params.scope ?? scope);
    const headers: Record<string, string> = {};
    if (this.#credentials) headers.authorization = this.#basicHeader();
    let res;
    try {
      res = await fetch(url, { headers, dispatcher: this.#dispatcher, signal: AbortSignal.timeout(TOKEN_REQUEST_MS) });
    } catch (err) {
      throw new UpstreamError(`token request to ${url.origin} failed: ${(err as Error).message}`, { cause: err });
    }
    if (res.status === 429) throw new UpstreamError('the upstream token server rate-limits us (429)', { status: 429, retryAfter: res.headers.get('retry-after') });
    if (res.status !== 200) {
      await res.body?.cancel();
      if (res.status === 401 || res.status === 403) {
        throw new UpstreamError(this.#credentials
          ? 'the upstream token server refused this mirror\'s credentials (--proxy-username, --proxy-password)'
          : 'the upstream token server refused an anonymous token; the mirror has no credentials (--proxy-username, --proxy-password)', { status: res.status, denied: true });
      }
      throw new UpstreamError(`the upstream token server answered ${res.status}`, { status: res.status });
    }
    const body = await res.json().catch(() => null) as { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown } | null;
    const token = typeof body?.token === 'string' && body.token !== '' ? body.token : typeof body?.access_token === 'string' ? body.access_token : '';
    if (token === '') throw new UpstreamError('the upstream token server answered without a token', { status: 502 });
    const seconds = typeof body!.expires_in === 'number' && body!.expires_in > 0 ? body!.expires_in : DEFAULT_TOKEN_SECONDS;
    const issued = typeof body!.issued_at === 'string' ? Date.parse(body!.issued_at) : NaN;
    // The server's issue time counts only when our clocks roughly agree; otherwise from now.
    const from = Number.isFinite(issued) && Math.abs(issued - Date.now()) < 60_000 ? issued : Date.now();
    const header = `Bearer ${token}`;
    this.#tokens.delete(scope);
    if (this.#tokens.size >= MAX_TOKENS) this.#tokens.delete(this.#tokens.keys().next().value!);
    this.#tokens.set(scope, { header, renewAt: from + seconds * 1000 - Math.min(RENEW_EARLY_MS, seconds * 500) });
    return header;
  }

  #basicHeader(): string {
    const { username, password } = this.#credentials!;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }
}

/** `promise`, or a rejection as soon as `signal` aborts (the promise itself runs on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new UpstreamError('the request ended while waiting for its token', { cause: signal.reason }));
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new UpstreamError('the request ended while waiting for its token', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** `Bearer realm="…",service="…"` → scheme (lower case) and parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const space = header.indexOf(' ');
  const scheme = (space === -1 ? header : header.slice(0, space)).trim().toLowerCase();
  const params: Record<string, string> = {};
  for (const [, key, quoted, bare] of header.slice(space + 1).matchAll(/([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    params[key.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : bare;
  }
  return { scheme, params };
}
