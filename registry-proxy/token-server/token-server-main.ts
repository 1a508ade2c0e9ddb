// Wires `tug registry token-server`: config in, users, ACL and signing key
// loaded (a bad one stops start-up), the token endpoint on top; signals to a stop.
import { formatListenAddress } from '../../common/listen-address.ts';
import { createLogger } from '../../common/logger.ts';
import { AccessPolicy } from '../auth/access-policy.ts';
import { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { TokenIssuer } from './token-issuer.ts';
import { loadSigningKey } from '../auth/token-keys.ts';
import type { TokenServerConfig } from './token-server-config.ts';
import { TokenServer } from './token-server.ts';

export async function startTokenServer(config: TokenServerConfig): Promise<void> {
  const log = createLogger(config.logLevel, { component: 'token-server' });
  const users = await HtpasswdUsers.load('--htpasswd', config.htpasswd, { concurrency: config.authConcurrency, queue: config.authQueue });
  const policy = config.acl ? await AccessPolicy.load(config.acl) : AccessPolicy.allowAll(false);
  const key = await loadSigningKey('--key', config.key);
  const server = new TokenServer(users, new TokenIssuer(key, config.issuer, config.service, config.expiry, policy), config.service, log);
  const stop = () => void server.close().then(() => {
    log.info('token server stopped');
    log.flush();
    process.exit(0);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    const bound = await server.listen(config.listen);
    log.info({ listen: formatListenAddress(bound), issuer: config.issuer, service: config.service, kid: key.kid }, 'token server listening');
    // The specification asks for at least 60 s, and docker and containers/image count any shorter token as 60 s.
    if (config.expiry < 60_000) log.warn({ expiry: config.expiry / 1000 }, 'tokens live less than 60 s: docker and skopeo keep using them for 60 s, and a registry refuses them past expiry and leeway');
  } catch (err) {
    log.fatal({ err: (err as Error).message }, 'token server failed to start');
    log.flush();
    process.exit(1);
  }
}
