// The balancing policies a route rule can name. A policy is one function.
import type { Backend } from '../backend.ts';
import type { BalancePolicy } from '../../etcd/route-keys.ts';
import type { ServicePool } from '../service-pool.ts';
import { selectLeastConnections } from './least-connections.ts';
import { selectRoundRobin } from './round-robin.ts';

export type SelectBackend = (pool: ServicePool, now: number, tried: readonly Backend[] | null) => Backend | null;

export const balancers: Readonly<Record<BalancePolicy, SelectBackend>> = {
  'round-robin': selectRoundRobin,
  'least-connections': selectLeastConnections,
};
