// A route's rateLimit holds for the cluster, not per router: three routers
// behind the load balancer, each counting the others' records under /routers/
// and enforcing a third; load well above the limit through the LB, and the
// cluster-wide accepted rate stays within ±20% of it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get } from '../helpers/http.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { LoadGenerator } from '../helpers/cluster/load-generator.ts';
import { TugCluster } from '../helpers/cluster/tug-cluster.ts';

const AVERAGE = 30;
const RUN_MS = 8000;
/** The burst drains in the first moments; the rate is measured after it. */
const WARMUP_MS = 2000;

describe('the cluster-wide rate limit', () => {
  let cluster: TugCluster;

  before(async () => {
    cluster = await TugCluster.start();
  });

  after(async () => {
    await cluster?.close();
  });

  it('accepts the limit, within ±20%, over three routers behind the load balancer', async (t) => {
    await cluster.etcd.put('/routes/limited', JSON.stringify({ hosts: ['limited.test'], service: 'app', rateLimit: { average: AVERAGE, burst: AVERAGE, per: 'route' } }));
    await waitFor(() => cluster.nodes.every((node) => node.router.output.includes('"routers":3')), { timeout: 15_000, what: 'every router counts three routers' });
    const lb = new URL(cluster.lb.url);
    await waitFor(async () => [200, 429].includes((await get(Number(lb.port), 'limited.test', '/', { address: lb.hostname })).status), { timeout: 10_000, what: 'the limited route is served' });
    await sleep(1500); // the buckets refill after the probe

    // Five times the limit, over enough connections that the LB's round robin reaches every router.
    const load = new LoadGenerator(cluster.lb.url, { host: 'limited.test', connections: 12, concurrency: 24, rate: AVERAGE * 5, timeout: 5000, maxDuration: RUN_MS });
    const started = Date.now();
    await sleep(RUN_MS);
    const summary = await load.stop();
    const steady = load.records.filter((r) => r.start >= started + WARMUP_MS && r.start < started + RUN_MS);
    const accepted = steady.filter((r) => r.status === 200).length;
    const limited = steady.filter((r) => r.status === 429).length;
    const others = steady.length - accepted - limited;
    const rate = accepted / ((RUN_MS - WARMUP_MS) / 1000);
    t.diagnostic(`accepted ${rate.toFixed(1)}/s (limit ${AVERAGE}/s), ${accepted} accepted and ${limited} limited after the warm-up`);
    assert.equal(others, 0, `only 200 and 429: ${JSON.stringify(summary.failures)}`);
    assert.ok(limited > accepted, `the load was above the limit (${accepted} accepted, ${limited} limited)`);
    assert.ok(rate >= AVERAGE * 0.8 && rate <= AVERAGE * 1.2, `cluster-wide accepted ${rate.toFixed(1)}/s for a limit of ${AVERAGE}/s`);
  });
});
