// The HTTP-01 challenges of the cluster's orders (etcd /acme/challenges/<token>),
// as every worker holds them: token → key authorization. Read once per request
// whose path is a challenge's, so a lookup is one Map get.

/** RFC 8555 §8.1: a token is base64url; the key authorization is "<token>.<base64url thumbprint>". */
const TOKEN = /^[A-Za-z0-9_-]{16,256}$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{16,128}$/;

export class ChallengeStore {
  readonly #answers = new Map<string, string>();

  set(token: string, keyAuthorization: string | null): void {
    if (keyAuthorization === null) this.#answers.delete(token);
    else this.#answers.set(token, keyAuthorization);
  }

  get(token: string): string | undefined {
    return this.#answers.get(token);
  }

  get size(): number {
    return this.#answers.size;
  }
}

export function isChallengeToken(token: string): boolean {
  return TOKEN.test(token);
}

/** Checks a /acme/challenges/<token> value; returns a reason string when it is not that token's key authorization. */
export function parseKeyAuthorization(token: string, raw: string): string | { readonly keyAuthorization: string } {
  const value = raw.trim();
  const dot = value.indexOf('.');
  if (dot < 0 || value.slice(0, dot) !== token || !THUMBPRINT.test(value.slice(dot + 1))) {
    return 'not a key authorization: expected "<token>.<account key thumbprint>" for the key\'s token';
  }
  return { keyAuthorization: value };
}
