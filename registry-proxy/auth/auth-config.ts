// The registry's authentication and access-control flags (part of `tug
// registry`'s option table), validated together: which authentication
// (`--auth`), the ACL, token auth's realm, service, issuer and keys, and the
// bound on concurrent password checks.
import { configError } from '../../common/errors.ts';
import type { OptionSpec } from '../../common/option-spec.ts';
import { parseInteger } from '../../common/units.ts';

export type AuthKind = 'none' | 'basic' | 'token';

export interface TokenAuthConfig {
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  readonly keys: string;
}

export interface AuthConfig {
  readonly auth: AuthKind;
  readonly htpasswd: string | null;
  readonly acl: string | null;
  readonly token: TokenAuthConfig | null;
  readonly authConcurrency: number;
  readonly authQueue: number;
}

export type AuthFlag = 'auth' | 'acl' | 'tokenRealm' | 'tokenService' | 'tokenIssuer' | 'tokenKeys' | 'authConcurrency' | 'authQueue';

export const authOptions = {
  auth: { flags: '--auth <kind>', env: 'TUG_REGISTRY_AUTH', default: '', description: 'none, basic (needs --htpasswd) or token (needs the --token-* flags); default: basic with --htpasswd, else none' },
  acl: { flags: '--acl <file>', env: 'TUG_REGISTRY_ACL', default: '', description: 'who may pull, push and delete which repositories (YAML or JSON; with --auth none or basic)' },
  tokenRealm: { flags: '--token-realm <url>', env: 'TUG_REGISTRY_TOKEN_REALM', default: '', description: 'token auth: the URL clients get tokens from' },
  tokenService: { flags: '--token-service <name>', env: 'TUG_REGISTRY_TOKEN_SERVICE', default: '', description: 'token auth: this registry\'s name, the audience its tokens must have' },
  tokenIssuer: { flags: '--token-issuer <name>', env: 'TUG_REGISTRY_TOKEN_ISSUER', default: '', description: 'token auth: the issuer its tokens must name' },
  tokenKeys: { flags: '--token-keys <file>', env: 'TUG_REGISTRY_TOKEN_KEYS', default: '', description: 'token auth: public key(s) tokens are signed with (PEM keys or certificates, or a JWKS)' },
  authConcurrency: { flags: '--auth-concurrency <n>', env: 'TUG_REGISTRY_AUTH_CONCURRENCY', default: '2', description: 'basic auth: bcrypt checks running at once' },
  authQueue: { flags: '--auth-queue <n>', env: 'TUG_REGISTRY_AUTH_QUEUE', default: '32', description: 'basic auth: checks waiting for a slot; beyond, 429 TOOMANYREQUESTS' },
} as const satisfies Record<AuthFlag, OptionSpec>;

export function resolveAuthConfig(get: (name: AuthFlag | 'htpasswd') => string): AuthConfig {
  const htpasswd = get('htpasswd') === '' ? null : get('htpasswd');
  const acl = get('acl') === '' ? null : get('acl');
  const kind = get('auth') === '' ? (htpasswd ? 'basic' : 'none') : get('auth');
  if (kind !== 'none' && kind !== 'basic' && kind !== 'token') throw configError(`--auth: expected none, basic or token, not ${JSON.stringify(kind)}`);
  if (kind === 'basic' && htpasswd === null) throw configError('--auth basic: needs --htpasswd');
  if (kind !== 'basic' && htpasswd !== null) throw configError(`--htpasswd: only for --auth basic (with --auth ${kind}, give it to the token server)`);
  let token: TokenAuthConfig | null = null;
  if (kind === 'token') {
    if (acl !== null) throw configError('--acl: with --auth token the tokens\' claims decide; give the ACL to the token server');
    const required = (name: 'tokenRealm' | 'tokenService' | 'tokenIssuer' | 'tokenKeys') => {
      const value = get(name);
      if (value === '') throw configError(`--auth token: needs ${authOptions[name].flags.split(' ')[0]} (or ${authOptions[name].env})`);
      return value;
    };
    const realm = required('tokenRealm');
    if (!/^https?:\/\/[^\s"]+$/.test(realm)) throw configError('--token-realm: expected an http:// or https:// URL');
    const service = required('tokenService');
    if (/["\\]/.test(service)) throw configError('--token-service: must not contain quotes or backslashes');
    token = { realm, service, issuer: required('tokenIssuer'), keys: required('tokenKeys') };
  }
  return {
    auth: kind,
    htpasswd,
    acl,
    token,
    authConcurrency: parseInteger('--auth-concurrency', get('authConcurrency'), 1, 64),
    authQueue: parseInteger('--auth-queue', get('authQueue'), 0, 10_000),
  };
}
