// What the log says about basicAuth's shared user lists (`usersKey`), from the
// primary's view of the table: which routes a list change affects, and one
// warning per route when its list stops resolving (missing, never valid,
// deleted: the route refuses every request) and a line when it resolves again.
// Runs on route and user-list changes only, never on backend changes.
import type { Logger } from '../../common/logger.ts';
import type { TableChange } from '../etcd/route-keys.ts';
import type { TableView } from './table-view.ts';

export class UserListWarnings {
  readonly #log: Logger;
  /** `route\0name` of every reference that did not resolve after the last change. */
  #unresolved = new Set<string>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Call after `table` has applied `changes`. */
  observe(changes: readonly TableChange[], table: TableView): void {
    if (!changes.some((c) => c.kind === 'user-list' || c.kind === 'route')) return;
    const references = table.userListReferences();
    for (const change of changes) {
      if (change.kind !== 'user-list') continue;
      const routes = references.filter((r) => r.name === change.name).map((r) => r.route);
      if (change.users === null) {
        if (routes.length > 0) this.#log.warn({ key: change.key, routes }, 'user list deleted: the routes referring to it refuse every request (503) until it is put again');
        else this.#log.info({ key: change.key }, 'user list deleted (no route refers to it)');
      } else {
        this.#log.info({ key: change.key, users: change.count, routes }, 'user list applied');
      }
    }
    const unresolved = new Set<string>();
    const referenced = new Set<string>();
    for (const { route, name, list } of references) {
      const id = `${route}\0${name}`;
      referenced.add(id);
      if (list.resolves) continue;
      unresolved.add(id);
      if (!this.#unresolved.has(id)) this.#log.warn({ route, key: list.key }, 'basicAuth refers to a user list that does not exist or has no valid value: the route refuses every request (503)');
    }
    for (const id of this.#unresolved) {
      if (unresolved.has(id) || !referenced.has(id)) continue;
      const [route, name] = id.split('\0');
      this.#log.info({ route, key: table.userList(name).key }, 'basicAuth user list resolves again');
    }
    this.#unresolved = unresolved;
  }
}
