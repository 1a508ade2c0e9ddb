// Round-robin over the service's schedule (weighted when weights differ),
// skipping ejected backends and those already tried for this request.
import type { Backend } from '../backend.ts';
import type { ServicePool } from '../service-pool.ts';

export function selectRoundRobin(pool: ServicePool, now: number, tried: readonly Backend[] | null): Backend | null {
  const schedule = pool.schedule;
  const n = schedule.length;
  let fallback: Backend | null = null;
  for (let i = 0; i < n; i++) {
    let index = pool.cursor;
    if (index >= n) index %= n;
    pool.cursor = index + 1;
    const backend = schedule[index];
    if (tried !== null && tried.includes(backend)) continue;
    if (backend.ejectedUntil <= now) return backend;
    // Every backend ejected: try the one whose ejection ends first rather than fail everything.
    if (fallback === null || backend.ejectedUntil < fallback.ejectedUntil) fallback = backend;
  }
  return fallback;
}
