// Least connections: the backend with the fewest requests in flight; ties are
// broken round-robin so that an idle service still spreads its load. Backends
// out of rotation (ejected, failing active checks) are only a fallback.
import type { Backend } from '../backend.ts';
import type { ServicePool } from '../service-pool.ts';

export function selectLeastConnections(pool: ServicePool, now: number, tried: readonly Backend[] | null): Backend | null {
  const entries = pool.entries;
  const n = entries.length;
  // An empty pool must not turn the cursor into NaN (n = 0 below).
  if (n === 0) return null;
  let start = pool.cursor;
  if (start >= n) start %= n;
  pool.cursor = start + 1;
  let best: Backend | null = null;
  let fallback: Backend | null = null;
  for (let i = 0; i < n; i++) {
    const backend = entries[(start + i) % n].backend;
    if (tried !== null && tried.includes(backend)) continue;
    if (backend.ejectedUntil > now) {
      if (fallback === null || (fallback.ejectedUntil > now && backend.ejectedUntil < fallback.ejectedUntil)) fallback = backend;
    } else if (backend.unhealthy) {
      // Fail-open: failing its checks, not ejected, fewest in flight.
      if (fallback === null || fallback.ejectedUntil > now || backend.active < fallback.active) fallback = backend;
    } else if (best === null || backend.active < best.active) {
      best = backend;
    }
  }
  return best ?? fallback;
}
