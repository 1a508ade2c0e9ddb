// Who may do what where: the ACL file (`--acl`, YAML or JSON), read and
// validated once at start-up. Rules only grant; what no rule grants is denied.
//
//   groups:                      # optional: names for sets of users
//     team-a: [alice, bob]
//   rules:
//     - repositories: [team-a/**]  # globs: `*` within one path component, `**` across them
//       groups: [team-a]           # and/or users: [ci], or users: ["*"] (any signed-in user)
//       actions: [pull, push]      # pull, push, delete
//     - repositories: [public/**]
//       anonymous: true            # no credentials needed: pull only
//       actions: [pull]
//
// Used by the registry with basic auth, and by `tug registry token-server` to
// decide which of the scopes a client asks for it grants.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { configError } from '../../common/errors.ts';

export type Action = 'pull' | 'push' | 'delete';
export const ACTIONS: readonly Action[] = ['pull', 'push', 'delete'];

interface Rule {
  readonly patterns: readonly RegExp[];
  /** `*` in the file: any authenticated user. */
  readonly users: ReadonlySet<string>;
  readonly anonymous: boolean;
  readonly actions: ReadonlySet<Action>;
  /** Some pattern is `**`: the rule covers every repository (the catalog and a mount without `from` ask). */
  readonly everywhere: boolean;
}

const RULE_KEYS = new Set(['repositories', 'users', 'groups', 'anonymous', 'actions']);
const PATTERN = /^[a-z0-9._\-/*]+$/;

export class AccessPolicy {
  readonly #rules: readonly Rule[];

  private constructor(rules: readonly Rule[]) {
    this.#rules = rules;
  }

  /** Grants every action to every signed-in user, and to anonymous clients only when `anonymous` (no auth configured). */
  static allowAll(anonymous: boolean): AccessPolicy {
    return new AccessPolicy([{ patterns: [/^/], users: new Set(['*']), anonymous, actions: new Set(ACTIONS), everywhere: true }]);
  }

  static async load(path: string): Promise<AccessPolicy> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw configError(`--acl: cannot read ${path}: ${(err as Error).message}`);
    }
    let doc: unknown;
    try {
      doc = parse(text);
    } catch (err) {
      throw configError(`--acl: ${path} is not YAML or JSON: ${(err as Error).message.split('\n')[0]}`);
    }
    return AccessPolicy.from(doc, path);
  }

  /** Validates a parsed ACL document; every problem names the rule and field. */
  static from(doc: unknown, source: string): AccessPolicy {
    const fail = (what: string): never => { throw configError(`--acl: ${source}: ${what}`); };
    if (!isRecord(doc)) return fail('expected a mapping with "rules" (and optionally "groups")');
    for (const key of Object.keys(doc)) if (key !== 'rules' && key !== 'groups') fail(`unknown key "${key}" (expected rules, groups)`);
    const groups = new Map<string, string[]>();
    if (doc.groups !== undefined) {
      if (!isRecord(doc.groups)) fail('groups: expected a mapping of group name to a list of users');
      for (const [name, members] of Object.entries(doc.groups as Record<string, unknown>)) {
        groups.set(name, stringList(members, `groups.${name}`, fail));
      }
    }
    if (!Array.isArray(doc.rules) || doc.rules.length === 0) fail('rules: expected a non-empty list');
    const rules = (doc.rules as unknown[]).map((raw, index): Rule => {
      const at = `rules[${index}]`;
      if (!isRecord(raw)) return fail(`${at}: expected a mapping`);
      for (const key of Object.keys(raw)) if (!RULE_KEYS.has(key)) fail(`${at}: unknown key "${key}" (expected ${[...RULE_KEYS].join(', ')})`);
      const repositories = stringList(raw.repositories, `${at}.repositories`, fail);
      if (repositories.length === 0) fail(`${at}.repositories: must name at least one pattern`);
      for (const pattern of repositories) if (!PATTERN.test(pattern)) fail(`${at}.repositories: "${pattern}" is not a repository glob (a-z 0-9 . _ - / * **)`);
      const actions = stringList(raw.actions, `${at}.actions`, fail);
      if (actions.length === 0) fail(`${at}.actions: must name at least one of ${ACTIONS.join(', ')}`);
      for (const action of actions) if (!ACTIONS.includes(action as Action)) fail(`${at}.actions: "${action}" is not one of ${ACTIONS.join(', ')}`);
      const users = new Set(raw.users === undefined ? [] : stringList(raw.users, `${at}.users`, fail));
      for (const group of raw.groups === undefined ? [] : stringList(raw.groups, `${at}.groups`, fail)) {
        const members = groups.get(group);
        if (!members) fail(`${at}.groups: no group "${group}" under groups`);
        for (const member of members!) users.add(member);
      }
      if (raw.anonymous !== undefined && typeof raw.anonymous !== 'boolean') fail(`${at}.anonymous: expected true or false`);
      const anonymous = raw.anonymous === true;
      if (anonymous && actions.some((a) => a !== 'pull')) fail(`${at}: anonymous clients may only pull`);
      if (!anonymous && users.size === 0 && raw.groups === undefined) fail(`${at}: names nobody (give users, groups or anonymous: true)`);
      return { patterns: repositories.map(globToRegExp), users, anonymous, actions: new Set(actions as Action[]), everywhere: repositories.includes('**') };
    });
    return new AccessPolicy(rules);
  }

  /** Whether `user` (null: anonymous) may do `action` on `repository`. */
  allows(user: string | null, repository: string, action: Action): boolean {
    return this.#rules.some((rule) => rule.actions.has(action) && this.#covers(rule, user) && rule.patterns.some((p) => p.test(repository)));
  }

  /** The subset of `actions` `user` may do on `repository`. */
  granted(user: string | null, repository: string, actions: readonly string[]): Action[] {
    return ACTIONS.filter((a) => actions.includes(a) && this.allows(user, repository, a));
  }

  /** Whether `user` may do `action` on every repository there is or will be. */
  allowsEverywhere(user: string | null, action: Action): boolean {
    return this.#rules.some((rule) => rule.everywhere && rule.actions.has(action) && this.#covers(rule, user));
  }

  /** Whether anonymous clients may do anything at all. */
  get grantsAnonymous(): boolean {
    return this.#rules.some((rule) => rule.anonymous);
  }

  #covers(rule: Rule, user: string | null): boolean {
    return user === null ? rule.anonymous : rule.users.has(user) || rule.users.has('*') || rule.anonymous;
  }
}

function globToRegExp(glob: string): RegExp {
  const source = glob.split(/(\*\*|\*)/).map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.]/g, '\\.'))).join('');
  return new RegExp(`^${source}$`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function stringList(value: unknown, at: string, fail: (what: string) => never): string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) return fail(`${at}: expected a list of names`);
  return value as string[];
}
