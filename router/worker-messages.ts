// The messages between the router's primary (one etcd watch per node) and its
// proxy workers, over the cluster IPC channel.
import type { TableChange } from './route-keys.ts';

export type ToWorker =
  | { readonly type: 'changes'; readonly changes: readonly TableChange[] }
  | { readonly type: 'drain' };

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'fatal'; readonly message: string };

/** Environment variable that carries the validated RouterConfig to a worker. */
export const WORKER_CONFIG_ENV = 'TUG_ROUTER_WORKER_CONFIG';
