// `tug deploy` configuration: fleet's endpoint for every verb, and the rollout's
// timing. Option tables with environment variables and documented defaults, one
// validation each; the unit options of a rollout are units/units-config.ts's.
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { configError } from '../common/errors.ts';
import { parseInteger } from '../common/units.ts';
import { optionReader, type OptionSpec } from '../common/option-spec.ts';
import { parseFleetEndpoint, type FleetEndpoint } from './fleet-client.ts';

export interface FleetConfig {
  readonly endpoint: FleetEndpoint;
  readonly requestTimeout: number;
}

export const fleetOptions = {
  endpoint: { flags: '--endpoint <url>', env: 'FLEETCTL_ENDPOINT', default: 'unix:///var/run/fleet.sock', description: 'fleet API: http://HOST:PORT or unix:///path (fleetctl\'s variable)' },
  requestTimeout: { flags: '--request-timeout <duration>', env: 'FLEETCTL_REQUEST_TIMEOUT', default: '10s', description: 'limit on each request to fleet' },
} as const satisfies Record<keyof FleetConfig, OptionSpec>;

export type RawFleetOptions = Partial<Record<keyof typeof fleetOptions, string>>;

export function resolveFleetConfig(raw: RawFleetOptions): FleetConfig {
  const { get, duration } = optionReader(fleetOptions, raw);
  return { endpoint: parseFleetEndpoint(get('endpoint')), requestTimeout: duration('requestTimeout', 100) };
}

export interface RolloutConfig {
  readonly instances: number;
  /** etcd as the deployer reaches it, to see announcements. */
  readonly deployerEtcd: readonly string[] | null;
  readonly timeout: number;
  readonly settle: number;
  readonly drain: number;
  readonly withdrawTimeout: number;
  readonly pollInterval: number;
  readonly directCheck: boolean;
}

export const rolloutOptions = {
  instances: { flags: '--instances <n>', env: 'TUG_INSTANCES', default: undefined, description: 'instances of the app when the rollout is done (required)' },
  deployerEtcd: { flags: '--deployer-etcd <urls>', env: 'TUG_DEPLOYER_ETCD', default: undefined, description: 'etcd endpoints as this machine reaches them (default: --etcd)' },
  timeout: { flags: '--timeout <duration>', env: 'TUG_ROLLOUT_TIMEOUT', default: '5m', description: 'per instance: limit from launch to announced and healthy (pulls count)' },
  settle: { flags: '--settle <duration>', env: 'TUG_ROLLOUT_SETTLE', default: '2s', description: 'wait after a new instance is healthy, so every router has seen it' },
  drain: { flags: '--drain <duration>', env: 'TUG_ROLLOUT_DRAIN', default: '5s', description: 'wait between withdrawing an old instance and stopping it (in-flight requests finish)' },
  withdrawTimeout: { flags: '--withdraw-timeout <duration>', env: 'TUG_ROLLOUT_WITHDRAW_TIMEOUT', default: '15s', description: 'limit on waiting for a withdrawn key to leave etcd (lease TTL + margin)' },
  pollInterval: { flags: '--poll-interval <duration>', env: 'TUG_ROLLOUT_POLL_INTERVAL', default: '500ms', description: 'how often fleet and etcd are checked' },
  directCheck: { flags: '--no-direct-check', env: 'TUG_ROLLOUT_NO_DIRECT_CHECK', default: undefined, description: 'trust the announcement alone; do not also probe the instance from this machine' },
} as const satisfies Record<keyof RolloutConfig, OptionSpec>;

export type RawRolloutOptions = Partial<Record<Exclude<keyof typeof rolloutOptions, 'directCheck'>, string>> & { directCheck?: boolean };

export function resolveRolloutConfig(raw: RawRolloutOptions): RolloutConfig {
  const { duration } = optionReader(rolloutOptions, raw);
  if (raw.instances === undefined) throw configError('--instances is required');
  return {
    instances: parseInteger('--instances', raw.instances, 0, 100),
    deployerEtcd: raw.deployerEtcd ? parseEtcdEndpoints(raw.deployerEtcd) : null,
    timeout: duration('timeout', 1000),
    settle: duration('settle', 0),
    drain: duration('drain', 0),
    withdrawTimeout: duration('withdrawTimeout', 0),
    pollInterval: duration('pollInterval', 50),
    directCheck: raw.directCheck !== false,
  };
}
