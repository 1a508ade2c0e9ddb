// The messages between the router's primary (one etcd watch per node) and its
// proxy workers, over the cluster IPC channel. Certificates travel as table
// changes too (checked by the primary first); private keys never leave the node.
import type { TableChange } from '../etcd/route-keys.ts';
import type { WorkerMetricsSnapshot } from '../metrics/worker-metrics.ts';

export type ToWorker =
  | { readonly type: 'changes'; readonly changes: readonly TableChange[] }
  | { readonly type: 'metrics-request'; readonly id: number }
  /** The TLS session-ticket keys every worker shares (48 bytes, base64), so a ticket resumes on any worker. */
  | { readonly type: 'ticket-keys'; readonly keys: string }
  /** SIGTERM arrived: keep serving (and accepting) for --drain-delay, but every response now closes its connection. */
  | { readonly type: 'draining' }
  /** The number of live routers in the cluster (their records under /routers/): a cluster-wide rate limit's share. */
  | { readonly type: 'routers'; readonly count: number }
  /** The primary's active health checks: every backend address failing them now (the whole set each time). */
  | { readonly type: 'health'; readonly unhealthy: readonly string[] }
  /** The cluster's sticky-session cookie key (etcd /cluster/sticky-key), base64. */
  | { readonly type: 'sticky-key'; readonly key: string }
  | { readonly type: 'drain' };

export type ToPrimary =
  | { readonly type: 'listening' }
  | { readonly type: 'metrics'; readonly id: number; readonly snapshot: WorkerMetricsSnapshot }
  | { readonly type: 'fatal'; readonly message: string };

/** Environment variable that carries the validated RouterConfig to a worker. */
export const WORKER_CONFIG_ENV = 'TUG_ROUTER_WORKER_CONFIG';
