// Builds the etcd v3 client every Tug component uses, tuned for an edge router:
// fail fast and reconnect fast. The etcd3 defaults (a 5 s circuit breaker per
// host, watch backoff up to 30 s, gRPC reconnect backoff up to 120 s) would keep
// a router blind for minutes after etcd returns; these settings bound that to ~1 s.
import { ClientRuntimeError, Etcd3, isRecoverableError } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry, type IBackoff } from 'cockatiel';
import { configError } from './errors.ts';

export function parseEtcdEndpoints(value: string): string[] {
  const hosts = value.split(',').map((h) => h.trim()).filter(Boolean);
  if (hosts.length === 0) throw configError('--etcd: expected at least one endpoint URL');
  for (const host of hosts) {
    let url: URL;
    try {
      url = new URL(host);
    } catch {
      throw configError(`--etcd: ${JSON.stringify(host)} is not a URL (expected http://HOST:PORT)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw configError(`--etcd: ${JSON.stringify(host)} must use http:// or https://`);
    }
  }
  return hosts;
}

export function createEtcdClient(hosts: readonly string[]): Etcd3 {
  return new Etcd3({
    hosts: [...hosts],
    dialTimeout: 2000,
    grpcOptions: {
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.min_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // etcd refuses pings more often than every 5 s (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 3000,
      'grpc.keepalive_permit_without_calls': 1,
    },
    faultHandling: {
      host: () => circuitBreaker(handleWhen(isRecoverableError), {
        halfOpenAfter: 500,
        breaker: new ConsecutiveBreaker(3),
      }),
      global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, hosts.length) }),
      // etcd3 types this as an IBackoff but calls it as cockatiel's factory (its own default is one).
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }) as unknown as IBackoff<unknown>,
    },
  });
}

const STALE_WATCH_RESPONSE = /^(Failed to find watcher for IWatchResponse|Could not find watcher corresponding to create response|Got a watch creation error, but found no pending watchers)/;

/**
 * etcd3 throws from inside its gRPC stream handler when a watch response names
 * a watcher it has already dropped (a watch canceled while responses were in
 * flight, seen after compactions and partitions). The throw happens before it
 * changes any state, so the response is simply stale: log it and carry on
 * instead of letting it end the process. Anything else stays fatal.
 */
export function surviveStaleWatchResponses(onStale: (message: string) => void): void {
  process.on('uncaughtException', (err) => {
    if (err instanceof ClientRuntimeError && STALE_WATCH_RESPONSE.test(err.message)) {
      onStale(err.message);
      return;
    }
    process.stderr.write(`${err.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
