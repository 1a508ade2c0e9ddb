// Round-robin over the service's schedule (weighted when weights differ),
// skipping backends out of rotation (ejected, or failing active health checks)
// and those already tried for this request.
import type { Backend } from '../backend.ts';
import type { ServicePool } from '../service-pool.ts';

export function selectRoundRobin(pool: ServicePool, now: number, tried: readonly Backend[] | null): Backend | null {
  const schedule = pool.schedule;
  const n = schedule.length;
  // An empty pool must not turn the cursor into NaN (n = 0 below).
  if (n === 0) return null;
  let start = pool.cursor;
  if (start >= n) start %= n;
  let index = start;
  let fallback: Backend | null = null;
  for (let i = 0; i < n; i++) {
    const backend = schedule[index];
    if (++index === n) index = 0;
    if (tried !== null && tried.includes(backend)) continue;
    if (backend.ejectedUntil <= now) {
      if (!backend.unhealthy) {
        pool.cursor = index;
        return backend;
      }
      // Failing its checks but not ejected: the preferred fallback (fail-open when every backend fails).
      if (fallback === null || fallback.ejectedUntil > now) fallback = backend;
    } else if (fallback === null || (fallback.ejectedUntil > now && backend.ejectedUntil < fallback.ejectedUntil)) {
      // Every backend ejected: try the one whose ejection ends first rather than fail everything.
      fallback = backend;
    }
  }
  // One step on, so that a fail-open service still rotates over its backends.
  pool.cursor = start + 1;
  return fallback;
}
