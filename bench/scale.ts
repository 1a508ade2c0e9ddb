// Scale: 10k services with 50k backends in etcd. Measures the router's
// initial sync time, its memory, and its CPU per etcd update.
import type { Etcd3 } from 'etcd3';
import { cpuSeconds, processTree, rss } from './processes.ts';
import type { Contender } from './contenders.ts';

export interface Scale {
  readonly services: number;
  readonly backends: number;
  readonly syncSeconds: number;
  readonly rssMiB: { primary: number; workers: number[] };
  readonly updates: number;
  readonly cpuMsPerUpdate: number;
}

export async function loadBackends(etcd: Etcd3, services: number, perService: number): Promise<void> {
  const ops: { key: string; value: string }[] = [];
  for (let s = 0; s < services; s++) {
    for (let i = 0; i < perService; i++) ops.push({ key: `/services/scale-${s}/@${i}`, value: `10.${(s >> 8) & 255}.${s & 255}.${i + 1}:8080` });
  }
  // etcd's default --max-txn-ops is 128.
  for (let i = 0; i < ops.length; i += 128) {
    await etcd.kv.txn({ success: ops.slice(i, i + 128).map(({ key, value }) => ({ request_put: { key: Buffer.from(key), value: Buffer.from(value) } })) });
  }
}

export async function measureScale(etcd: Etcd3, start: () => Promise<Contender>, services: number, perService: number, updates: number): Promise<Scale> {
  const started = performance.now();
  const tug = await start();
  const syncSeconds = (performance.now() - started) / 1000;
  const pids = processTree(tug.pid);
  const before = cpuSeconds(pids);
  for (let u = 0; u < updates; u++) {
    const s = u % services;
    await etcd.put(`/services/scale-${s}/@0`).value(JSON.stringify({ host: `10.${(s >> 8) & 255}.${s & 255}.1`, port: 8080, weight: 1 + (u % 5) }));
  }
  // Let the last updates reach every worker before reading CPU time.
  await new Promise((r) => setTimeout(r, 1000));
  const after = cpuSeconds(pids);
  const result: Scale = {
    services,
    backends: services * perService,
    syncSeconds: Math.round(syncSeconds * 100) / 100,
    rssMiB: { primary: mib(rss(tug.pid)), workers: pids.slice(1).map((p) => mib(rss(p))) },
    updates,
    cpuMsPerUpdate: Math.round(((after - before) * 1000 / updates) * 1000) / 1000,
  };
  await tug.process.stop();
  return result;
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
