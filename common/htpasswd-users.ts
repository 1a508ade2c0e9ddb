// The users of an htpasswd text of bcrypt hashes (what `htpasswd -B` writes and
// distribution's htpasswd auth reads), and the one way to check a password
// against them, shared by the registry (--htpasswd) and the router (a route's
// basicAuth). Checks cost the same whether the user exists or not (an unknown
// user is checked against the dearest real hash, whose answer is then ignored),
// so timing tells nobody which users exist; and at most `concurrency` checks
// run at once with a bounded queue behind them (beyond it the caller's refusal,
// a 429), so a flood of bad passwords cannot take every core of the node.
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { configError } from './errors.ts';
import { ConcurrencyLimit } from './concurrency-limit.ts';

const BCRYPT = /^\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53}$/;

export interface HashCheckLimits {
  /** bcrypt checks running at once. */
  readonly concurrency: number;
  /** Checks waiting for a slot; one more is refused. */
  readonly queue: number;
}

export class HtpasswdUsers {
  readonly #users: ReadonlyMap<string, string>;
  /** Compared against for an unknown user: the hash of the highest cost, so the check costs what a real one does. */
  readonly #dummyHash: string;
  readonly #limit: ConcurrencyLimit;

  private constructor(users: ReadonlyMap<string, string>, dummyHash: string, limit: ConcurrencyLimit) {
    this.#users = users;
    this.#dummyHash = dummyHash;
    this.#limit = limit;
  }

  /**
   * Parses `user:bcrypt-hash` lines (blank lines and `#` comments skipped); a reason naming the line
   * when one is anything else. `limit`: the bound on checks, which several sets of users may share.
   */
  static parse(text: string, limit: ConcurrencyLimit): HtpasswdUsers | string {
    const users = new Map<string, string>();
    let dummyHash = '';
    let maxCost = 0;
    for (const [index, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const hash = line.slice(colon + 1);
      const match = BCRYPT.exec(hash);
      if (colon <= 0 || !match) return `line ${index + 1} is not user:bcrypt-hash (htpasswd -B)`;
      const cost = Number(match[1]);
      if (cost < 4 || cost > 31) return `line ${index + 1}: bcrypt cost ${cost} is outside 4-31`;
      if (cost > maxCost) {
        maxCost = cost;
        dummyHash = hash;
      }
      users.set(line.slice(0, colon), hash);
    }
    if (users.size === 0) return 'no users';
    return new HtpasswdUsers(users, dummyHash, limit);
  }

  /** Reads an htpasswd file; anything unusable stops start-up with the flag, the file and the line. */
  static async load(flag: string, path: string, limits: HashCheckLimits): Promise<HtpasswdUsers> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw configError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
    }
    const users = HtpasswdUsers.parse(text, new ConcurrencyLimit(limits.concurrency, limits.queue));
    if (typeof users === 'string') throw configError(`${flag}: ${path}: ${users}`);
    return users;
  }

  /** How many users (for views that must never show the hashes). */
  get size(): number {
    return this.#users.size;
  }

  /** Whether `password` is `user`'s; the same cost either way. Throws `refused()` when too many checks wait. */
  async verify(user: string, password: string, refused: () => Error): Promise<boolean> {
    const hash = this.#users.get(user);
    const valid = await this.#limit.run(() => bcrypt.compare(password, hash ?? this.#dummyHash), refused);
    return valid && hash !== undefined;
  }
}
