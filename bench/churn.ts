// Churn: a backend added and removed ten times a second while wrk loads the
// service; every failed request is counted (target: zero).
import type { Etcd3 } from 'etcd3';
import { HOST, type Contender } from './contenders.ts';
import { runWrk } from './wrk.ts';

export interface Churn {
  readonly seconds: number;
  readonly changes: number;
  readonly requests: number;
  readonly failed: number;
  readonly rps: number;
}

export async function measureChurn(etcd: Etcd3, tug: Contender, extraUpstream: string, seconds: number): Promise<Churn> {
  let changes = 0;
  let running = true;
  const churn = (async () => {
    while (running) {
      if (changes % 2 === 0) await etcd.put('/services/bench/@churn').value(extraUpstream);
      else await etcd.delete().key('/services/bench/@churn');
      changes++;
      await new Promise((r) => setTimeout(r, 100));
    }
    await etcd.delete().key('/services/bench/@churn');
  })();
  const result = await runWrk({ url: `http://127.0.0.1:${tug.port}/small`, connections: 50, seconds, headers: { Host: HOST } });
  running = false;
  await churn;
  return { seconds, changes, requests: result.requests, failed: result.errors, rps: Math.round(result.rps) };
}
