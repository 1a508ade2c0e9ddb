// `tug deploy split` and `tug deploy canary` configuration: etcd as this
// machine reaches it, and the canary's steps, pace and error bound. Option
// tables with environment variables and documented defaults, one validation each.
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { configError } from '../common/errors.ts';
import { optionReader, type OptionSpec } from '../common/option-spec.ts';
import { SERVICE_NAME } from '../router/etcd/service-name.ts';
import type { WeightedService } from '../router/etcd/route-keys.ts';

export interface TrafficConfig {
  readonly etcd: readonly string[];
  readonly etcdPrefix: string;
}

export const trafficOptions = {
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints as this machine reaches them' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /routes/ (the routers\' --etcd-prefix)' },
} as const satisfies Record<keyof TrafficConfig, OptionSpec>;

export type RawTrafficOptions = Partial<Record<keyof typeof trafficOptions, string>>;

export function resolveTrafficConfig(raw: RawTrafficOptions): TrafficConfig {
  const { get } = optionReader(trafficOptions, raw);
  return { etcd: parseEtcdEndpoints(get('etcd')), etcdPrefix: get('etcdPrefix') };
}

export interface CanaryConfig {
  /** The service that takes the traffic over. */
  readonly to: string;
  /** Its share at each step, percent, rising; the last is 100 unless the canary should stop short. */
  readonly steps: readonly number[];
  /** How long each step lasts (and is watched) before the next. */
  readonly interval: number;
  /** The largest share of 5xx answers of `to` tolerated during a step, 0..1. */
  readonly maxErrorRate: number;
  /** Requests `to` must have answered in a step before its error share is judged. */
  readonly minRequests: number;
  /** Router admin URLs to read /metrics from; null: the routers registered in etcd. */
  readonly routers: readonly string[] | null;
  /** How often the routers' metrics are read during a step. */
  readonly pollInterval: number;
}

export const canaryOptions = {
  to: { flags: '--to <service>', env: 'TUG_CANARY_TO', default: undefined, description: 'the new service (required)' },
  steps: { flags: '--steps <percents>', env: 'TUG_CANARY_STEPS', default: '10,25,50,100', description: 'the new service\'s share at each step, rising' },
  interval: { flags: '--interval <duration>', env: 'TUG_CANARY_INTERVAL', default: '1m', description: 'how long each step is watched' },
  maxErrorRate: { flags: '--max-error-rate <share>', env: 'TUG_CANARY_MAX_ERROR_RATE', default: '0.05', description: 'largest 5xx share of the new service in a step (0..1); above it the canary rolls back' },
  minRequests: { flags: '--min-requests <n>', env: 'TUG_CANARY_MIN_REQUESTS', default: '20', description: 'requests the new service must answer in a step before its 5xx share is judged' },
  routers: { flags: '--routers <urls>', env: 'TUG_CANARY_ROUTERS', default: undefined, description: 'router admin URLs (http://host:9090,…) whose /metrics are read (default: the routers registered in etcd)' },
  pollInterval: { flags: '--poll-interval <duration>', env: 'TUG_CANARY_POLL_INTERVAL', default: '5s', description: 'how often the routers\' metrics are read during a step' },
} as const satisfies Record<keyof CanaryConfig, OptionSpec>;

export type RawCanaryOptions = Partial<Record<keyof typeof canaryOptions, string>>;

export function resolveCanaryConfig(raw: RawCanaryOptions): CanaryConfig {
  const { get, duration } = optionReader(canaryOptions, raw);
  const to = get('to');
  if (!SERVICE_NAME.test(to)) throw configError(`--to: ${JSON.stringify(to)} is not a service name`);
  const steps = get('steps').split(',').map((s) => Number(s.trim()));
  if (steps.length === 0 || steps.some((s, i) => !Number.isInteger(s) || s < 1 || s > 100 || (i > 0 && s <= steps[i - 1]))) {
    throw configError(`--steps: expected rising integer percents 1..100, e.g. 10,25,50,100, got ${JSON.stringify(get('steps'))}`);
  }
  const maxErrorRate = Number(get('maxErrorRate'));
  if (!Number.isFinite(maxErrorRate) || maxErrorRate < 0 || maxErrorRate > 1) throw configError('--max-error-rate: expected a share 0..1, e.g. 0.05');
  const minRequests = Number(get('minRequests'));
  if (!Number.isInteger(minRequests) || minRequests < 1) throw configError('--min-requests: expected an integer of at least 1');
  let routers: string[] | null = null;
  if (raw.routers !== undefined && raw.routers !== '') {
    routers = raw.routers.split(',').map((u) => u.trim().replace(/\/+$/, ''));
    for (const url of routers) if (!/^https?:\/\/[^/\s]+$/.test(url)) throw configError(`--routers: ${JSON.stringify(url)} is not an admin URL like http://10.0.0.4:9090`);
  }
  return { to, steps, interval: duration('interval', 100), maxErrorRate, minRequests, routers, pollInterval: duration('pollInterval', 50) };
}

/** `web-v1=90 web-v2=10` → a split; a usage error names the argument. */
export function parseSplitArguments(args: readonly string[]): WeightedService[] {
  if (args.length === 0) throw configError('give at least one SERVICE=WEIGHT');
  return args.map((arg) => {
    const match = /^([^=]+)=(\d{1,3})$/.exec(arg);
    if (!match || !SERVICE_NAME.test(match[1]) || Number(match[2]) > 100) throw configError(`${JSON.stringify(arg)}: expected SERVICE=WEIGHT with a weight 0..100`);
    return { service: match[1], weight: Number(match[2]) };
  });
}
