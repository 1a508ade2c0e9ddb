// Optional HTTP basic authentication against an htpasswd file of bcrypt
// hashes (what `htpasswd -B` writes and distribution's htpasswd auth reads).
// Needed whenever the registry listens beyond loopback. A successful check is
// remembered for a few minutes, because bcrypt is deliberately slow and one
// `docker pull` makes dozens of requests.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import bcrypt from 'bcryptjs';
import { configError } from '../common/errors.ts';
import { RegistryError } from './registry-errors.ts';

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
const REMEMBER_MS = 5 * 60_000;
const MAX_REMEMBERED = 1000;
/** Compared against when the user is unknown, so timing does not tell which users exist. */
const DUMMY_HASH = '$2b$10$CwTycUXWue0Thq9StjUM0uJ8.6u8NJ8QfSkOxv0D5xdYRCJE9bNnm';
const REALM = 'Basic realm="tug-registry"';

export class HtpasswdAuth {
  readonly #users: ReadonlyMap<string, string>;
  readonly #remembered = new Map<string, number>();

  private constructor(users: ReadonlyMap<string, string>) {
    this.#users = users;
  }

  /** Reads `user:bcrypt-hash` lines; anything else stops start-up with the line number. */
  static async load(path: string): Promise<HtpasswdAuth> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw configError(`--htpasswd: cannot read ${path}: ${(err as Error).message}`);
    }
    const users = new Map<string, string>();
    for (const [index, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const user = line.slice(0, colon);
      const hash = line.slice(colon + 1);
      if (colon <= 0 || !BCRYPT.test(hash)) throw configError(`--htpasswd: line ${index + 1} of ${path} is not user:bcrypt-hash (htpasswd -B)`);
      users.set(user, hash);
    }
    if (users.size === 0) throw configError(`--htpasswd: ${path} has no users`);
    return new HtpasswdAuth(users);
  }

  /** Null when the request carries valid credentials, else the 401 to answer. */
  async check(req: IncomingMessage): Promise<RegistryError | null> {
    const header = req.headers.authorization ?? '';
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    if (!match) return unauthorized();
    const key = createHash('sha256').update(match[1]).digest('hex');
    const until = this.#remembered.get(key);
    if (until !== undefined && until > Date.now()) return null;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return unauthorized();
    const hash = this.#users.get(decoded.slice(0, colon));
    const valid = await bcrypt.compare(decoded.slice(colon + 1), hash ?? DUMMY_HASH);
    if (!valid || hash === undefined) return unauthorized();
    if (this.#remembered.size >= MAX_REMEMBERED) this.#remembered.delete(this.#remembered.keys().next().value!);
    this.#remembered.set(key, Date.now() + REMEMBER_MS);
    return null;
  }
}

function unauthorized(): RegistryError {
  return new RegistryError('UNAUTHORIZED', undefined, { headers: { 'WWW-Authenticate': REALM } });
}
