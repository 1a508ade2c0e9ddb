// Route convergence: how long from an etcd put (resolved) until the router
// routes the new key, and from a delete until it stops — as a distribution.
import type { Etcd3 } from 'etcd3';
import { Pool } from 'undici';
import { percentile } from './stats.ts';

export interface Convergence {
  readonly samples: number;
  readonly putToFirstRoutedMs: { p50: number; p99: number; max: number };
  readonly deleteToLastRoutedMs: { p50: number; p99: number; max: number };
}

export async function measureConvergence(etcd: Etcd3, routerPort: number, upstream: string, samples: number): Promise<Convergence> {
  const pool = new Pool(`http://127.0.0.1:${routerPort}`, { connections: 1 });
  const status = async (host: string) => {
    const res = await pool.request({ path: '/small', method: 'GET', headers: { host } });
    await res.body.dump();
    return res.statusCode;
  };
  const puts: number[] = [];
  const deletes: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const key = `/services/conv-${i}/@1`;
      const host = `conv-${i}.bench`;
      await etcd.put(key).value(upstream);
      const putAt = performance.now();
      while ((await status(host)) !== 200) {
        if (performance.now() - putAt > 5000) throw new Error(`${key} not routed within 5 s`);
      }
      puts.push(performance.now() - putAt);
      await etcd.delete().key(key);
      const delAt = performance.now();
      while ((await status(host)) === 200) {
        if (performance.now() - delAt > 5000) throw new Error(`${key} still routed 5 s after delete`);
      }
      deletes.push(performance.now() - delAt);
    }
  } finally {
    await pool.close();
  }
  const summary = (v: number[]) => ({ p50: round(percentile(v, 50)), p99: round(percentile(v, 99)), max: round(Math.max(...v)) });
  return { samples, putToFirstRoutedMs: summary(puts), deleteToLastRoutedMs: summary(deletes) };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
