// `tug registry token-server`'s configuration: every flag with its
// environment variable and documented default, validated at start-up.
import { configError } from '../../common/errors.ts';
import { parseListenAddress, type ListenAddress } from '../../common/listen-address.ts';
import type { LogLevel } from '../../common/logger.ts';
import { optionReader, type OptionSpec } from '../../common/option-spec.ts';
import { parseInteger } from '../../common/units.ts';
import { authOptions } from '../auth/auth-config.ts';
import { LOG_LEVELS, registryOptions } from '../config.ts';

export interface TokenServerConfig {
  readonly listen: ListenAddress;
  readonly htpasswd: string;
  readonly acl: string | null;
  readonly key: string;
  readonly issuer: string;
  readonly service: string;
  /** Token lifetime, ms. */
  readonly expiry: number;
  readonly authConcurrency: number;
  readonly authQueue: number;
  readonly logLevel: LogLevel;
}

export const tokenServerOptions = {
  listen: { flags: '--listen <addr>', env: 'TUG_TOKEN_SERVER_LISTEN', default: '127.0.0.1:5002', description: 'HTTP listener of the token endpoint (GET /token), HOST:PORT' },
  htpasswd: { flags: '--htpasswd <file>', env: 'TUG_TOKEN_SERVER_HTPASSWD', default: undefined, description: 'the users, an htpasswd file of bcrypt hashes (required)' },
  acl: { flags: '--acl <file>', env: 'TUG_TOKEN_SERVER_ACL', default: '', description: 'what each user may be granted (YAML or JSON); none: every signed-in user gets what it asks, anonymous clients nothing' },
  key: { flags: '--key <file>', env: 'TUG_TOKEN_SERVER_KEY', default: undefined, description: 'PEM private key tokens are signed with (RSA, EC P-256/384/521 or Ed25519; required)' },
  issuer: { flags: '--issuer <name>', env: 'TUG_TOKEN_SERVER_ISSUER', default: undefined, description: 'the tokens\' iss; the registry\'s --token-issuer (required)' },
  service: { flags: '--service <name>', env: 'TUG_TOKEN_SERVER_SERVICE', default: undefined, description: 'the registry\'s --token-service, the only service tokens are issued for (required)' },
  expiry: { flags: '--expiry <duration>', env: 'TUG_TOKEN_SERVER_EXPIRY', default: '5m', description: 'lifetime of a token (at least 1s; below 1m, docker and containers/image still use a token for 60 s, which registries refuse once past its expiry and their leeway)' },
  authConcurrency: authOptions.authConcurrency,
  authQueue: authOptions.authQueue,
  logLevel: registryOptions.logLevel,
} as const satisfies Record<keyof TokenServerConfig, OptionSpec>;

export type RawTokenServerOptions = Partial<Record<keyof TokenServerConfig, string | boolean>>;

export function resolveTokenServerConfig(raw: RawTokenServerOptions): TokenServerConfig {
  const { get, duration } = optionReader(tokenServerOptions, raw);
  const logLevel = get('logLevel') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw configError(`--log-level: expected one of ${LOG_LEVELS.join(', ')}`);
  const service = get('service');
  if (/["\\]/.test(service)) throw configError('--service: must not contain quotes or backslashes');
  return {
    listen: parseListenAddress('--listen', get('listen')),
    htpasswd: get('htpasswd'),
    acl: get('acl') === '' ? null : get('acl'),
    key: get('key'),
    issuer: get('issuer'),
    service,
    expiry: duration('expiry', 1000),
    authConcurrency: parseInteger('--auth-concurrency', get('authConcurrency'), 1, 64),
    authQueue: parseInteger('--auth-queue', get('authQueue'), 0, 10_000),
    logLevel,
  };
}
