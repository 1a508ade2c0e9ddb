// The Docker registry token specification's scopes and `access` claim, as
// distribution reads and writes them: a scope is `type:name:actions`
// (`repository:team-a/app:pull,push`, `registry:catalog:*`); the name may hold
// `:` (a host with a port), so type ends at the first `:` and actions begin
// after the last. A token's `access` claim lists `{type, name, actions}`.
import type { Action } from './access-policy.ts';
import type { RequestAccess } from './request-access.ts';

export interface AccessEntry {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

export function parseScope(scope: string): AccessEntry | null {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return null;
  const actions = scope.slice(last + 1).split(',').filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

export function formatScope(entry: AccessEntry): string {
  return `${entry.type}:${entry.name}:${entry.actions.join(',')}`;
}

/** The access a verified token's claims give (`sub`: the user). */
export function tokenAccess(subject: string | null, claim: unknown): RequestAccess {
  const entries = Array.isArray(claim) ? claim.filter(isEntry) : [];
  const has = (type: string, name: string, action: string) =>
    entries.some((e) => e.type === type && e.name === name && (e.actions.includes(action) || e.actions.includes('*')));
  const catalog = has('registry', 'catalog', '*');
  return {
    user: subject,
    may: (repository: string, action: Action) => has('repository', repository, action),
    lists: (repository: string) => catalog || has('repository', repository, 'pull'),
    pullsEverywhere: false,
  };
}

function isEntry(value: unknown): value is AccessEntry {
  const e = value as AccessEntry;
  return typeof e === 'object' && e !== null && typeof e.type === 'string' && typeof e.name === 'string'
    && Array.isArray(e.actions) && e.actions.every((a) => typeof a === 'string');
}
