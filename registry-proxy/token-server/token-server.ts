// `tug registry token-server`'s HTTP endpoint, the realm of the registry's
// token auth: `GET /token?service=…&scope=…` (scope repeatable, or
// space-separated), with basic credentials of an htpasswd user or none (an
// anonymous client gets what the ACL's anonymous rules allow). Answers
// `{token, access_token, expires_in, issued_at}` as distribution's clients
// expect; wrong credentials get 401 with a Basic challenge, a service other
// than its own 400. Nothing it is sent can crash it.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOn, type ListenAddress } from '../../common/listen-address.ts';
import type { Logger } from '../../common/logger.ts';
import { sendError } from '../http-exchange.ts';
import type { HtpasswdUsers } from '../../common/htpasswd-users.ts';
import { tooManyChecks } from '../auth/basic-auth.ts';
import { RegistryError, registryErrorFrom } from '../registry-errors.ts';
import type { TokenIssuer } from './token-issuer.ts';

const REALM = 'Basic realm="tug-registry-token"';
const MAX_SCOPES = 64;

export class TokenServer {
  readonly #server: Server;
  readonly #users: HtpasswdUsers;
  readonly #issuer: TokenIssuer;
  readonly #service: string;
  readonly #log: Logger;

  constructor(users: HtpasswdUsers, issuer: TokenIssuer, service: string, log: Logger) {
    this.#users = users;
    this.#issuer = issuer;
    this.#service = service;
    this.#log = log;
    this.#server = createServer({ headersTimeout: 30_000, requestTimeout: 60_000 }, (req, res) => void this.#handle(req, res));
    this.#server.on('clientError', (_err, socket) => socket.destroy());
  }

  listen(address: ListenAddress): Promise<ListenAddress> {
    return listenOn(this.#server, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.resume();
    try {
      const url = new URL(req.url ?? '/', 'http://token.invalid');
      if (url.pathname !== '/token') throw new RegistryError('UNSUPPORTED', 'no such endpoint', { status: 404 });
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new RegistryError('UNSUPPORTED', 'GET /token only', { headers: { Allow: 'GET, HEAD' } });
      const service = url.searchParams.get('service');
      if (service !== null && service !== this.#service) throw new RegistryError('DENIED', `this server issues tokens for ${this.#service} only`, { status: 400 });
      const user = await this.#signIn(req);
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter((s) => s !== '').slice(0, MAX_SCOPES);
      const access = this.#issuer.grant(user, scopes);
      const issued = await this.#issuer.issue(user, access);
      this.#log.info({ user, asked: scopes, granted: access }, 'token issued');
      const body = Buffer.from(JSON.stringify({ token: issued.token, access_token: issued.token, expires_in: issued.expiresIn, issued_at: issued.issuedAt }));
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      const { error, fault } = registryErrorFrom(err);
      if (fault) this.#log.error({ err: (err as Error).message }, 'token request failed');
      sendError(req, res, error);
    }
  }

  /** The user of valid basic credentials; null without credentials; 401 for wrong ones. */
  async #signIn(req: IncomingMessage): Promise<string | null> {
    const header = req.headers.authorization;
    if (header === undefined) return null;
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    const decoded = match ? Buffer.from(match[1], 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    const unauthorized = new RegistryError('UNAUTHORIZED', 'wrong user name or password', { headers: { 'WWW-Authenticate': REALM } });
    if (colon <= 0) throw unauthorized;
    const user = decoded.slice(0, colon);
    if (!(await this.#users.verify(user, decoded.slice(colon + 1), tooManyChecks))) throw unauthorized;
    return user;
  }
}
