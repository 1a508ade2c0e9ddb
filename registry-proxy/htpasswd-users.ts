// The users of an htpasswd file of bcrypt hashes (what `htpasswd -B` writes and
// distribution's htpasswd auth reads), and the one way to check a password
// against them. Checks cost the same whether the user exists or not (an
// unknown user is checked against a hash of the file's highest cost), so
// timing tells nobody which users exist; and at most `concurrency` checks run
// at once with a bounded queue behind them (beyond it: 429 TOOMANYREQUESTS),
// so a flood of bad passwords cannot take every core of the node.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { configError } from '../common/errors.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';
import { RegistryError } from './registry-errors.ts';

const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

export interface HashCheckLimits {
  /** bcrypt checks running at once. */
  readonly concurrency: number;
  /** Checks waiting for a slot; one more is refused with 429. */
  readonly queue: number;
}

export class HtpasswdUsers {
  readonly #users: ReadonlyMap<string, string>;
  /** Compared against for an unknown user: the cost of the dearest real hash. */
  readonly #dummyHash: string;
  readonly #limit: ConcurrencyLimit;

  private constructor(users: ReadonlyMap<string, string>, dummyHash: string, limits: HashCheckLimits) {
    this.#users = users;
    this.#dummyHash = dummyHash;
    this.#limit = new ConcurrencyLimit(limits.concurrency, limits.queue);
  }

  /** Reads `user:bcrypt-hash` lines; anything else stops start-up with the line number. */
  static async load(path: string, limits: HashCheckLimits): Promise<HtpasswdUsers> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw configError(`--htpasswd: cannot read ${path}: ${(err as Error).message}`);
    }
    const users = new Map<string, string>();
    let maxCost = 4;
    for (const [index, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const hash = line.slice(colon + 1);
      const match = BCRYPT.exec(hash);
      if (colon <= 0 || !match) throw configError(`--htpasswd: line ${index + 1} of ${path} is not user:bcrypt-hash (htpasswd -B)`);
      const cost = Number(match[1]);
      if (cost < 4 || cost > 31) throw configError(`--htpasswd: line ${index + 1} of ${path}: bcrypt cost ${cost} is outside 4-31`);
      maxCost = Math.max(maxCost, cost);
      users.set(line.slice(0, colon), hash);
    }
    if (users.size === 0) throw configError(`--htpasswd: ${path} has no users`);
    const dummyHash = await bcrypt.hash(randomBytes(16).toString('hex'), maxCost);
    return new HtpasswdUsers(users, dummyHash, limits);
  }

  /** Whether `password` is `user`'s; the same cost either way. Throws 429 TOOMANYREQUESTS when too many checks wait. */
  async verify(user: string, password: string): Promise<boolean> {
    const hash = this.#users.get(user);
    const valid = await this.#limit.run(
      () => bcrypt.compare(password, hash ?? this.#dummyHash),
      () => new RegistryError('TOOMANYREQUESTS', 'too many password checks in progress; retry', { headers: { 'Retry-After': '1' } }),
    );
    return valid && hash !== undefined;
  }
}
