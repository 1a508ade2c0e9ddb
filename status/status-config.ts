// `tug status`'s configuration: where etcd is and how to print, each flag with
// its environment variable and documented default; validated in resolveStatusConfig.
import { parseEtcdEndpoints } from '../common/etcd-client.ts';
import { configError } from '../common/errors.ts';
import { optionReader, type OptionSpec } from '../common/option-spec.ts';

export interface StatusConfig {
  readonly etcd: readonly string[];
  readonly etcdPrefix: string;
  readonly json: boolean;
}

export const statusOptions = {
  etcd: { flags: '--etcd <urls>', env: 'TUG_ETCD', default: 'http://127.0.0.1:2379', description: 'etcd endpoints, comma-separated' },
  etcdPrefix: { flags: '--etcd-prefix <prefix>', env: 'TUG_ETCD_PREFIX', default: '', description: 'namespace before /routers/, /services/, /routes/ and /tls/' },
  json: { flags: '--json', env: 'TUG_STATUS_JSON', default: undefined, description: 'print one JSON object (for scripts) instead of tables' },
} as const satisfies Record<keyof StatusConfig, OptionSpec>;

export type RawStatusOptions = Partial<Record<keyof StatusConfig, string | boolean>>;

export function resolveStatusConfig(raw: RawStatusOptions): StatusConfig {
  const { get } = optionReader(statusOptions, raw);
  const etcdPrefix = get('etcdPrefix');
  if (etcdPrefix !== '' && !/^\/[\x21-\x7e]*[^/]$/.test(etcdPrefix)) throw configError('--etcd-prefix: must start with / and not end with /');
  const json = raw.json;
  return {
    etcd: parseEtcdEndpoints(get('etcd')),
    etcdPrefix,
    json: json === true || (typeof json === 'string' && json !== '' && json !== '0' && json !== 'false'),
  };
}
