// Builds the etcd v3 client every Tug component uses, tuned for an edge router:
// fail fast and reconnect fast. The etcd3 defaults (a 5 s circuit breaker per
// host, gRPC reconnect backoff up to 120 s) would keep a router blind for minutes
// after etcd returns; these settings bound that to ~1 s. The router watches
// through its own stream (router/etcd/watch-stream.ts), not etcd3's watch builder.
import { Etcd3, isRecoverableError } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, handleWhen, retry } from 'cockatiel';
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
    },
  });
}
