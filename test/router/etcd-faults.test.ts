// Correct against etcd: an outage never removes a route, and a compacted or
// wiped etcd is followed by a fresh snapshot instead of a silent watch.
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

describe('etcd faults', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let backend: TestBackend;

  before(async () => {
    backend = await startBackend('app');
  });
  after(async () => {
    await backend?.close();
  });
  beforeEach(async () => {
    etcd = await EtcdServer.start();
  });
  afterEach(async () => {
    await router?.stop();
    await etcd?.close();
  });

  it('keeps serving known routes while etcd is down, and picks up new keys after it returns', async () => {
    await etcd.put('/services/known/@1', backend.address);
    router = await startRouter({ etcd: etcd.endpoint });
    assert.equal((await get(router.httpPort, 'known.test')).status, 200);

    await etcd.stop();
    await waitFor(async () => (await router.health()).body.etcd.connected === false, { timeout: 5000, what: 'router to notice etcd is down' });
    const statuses: number[] = [];
    const until = Date.now() + 3000;
    while (Date.now() < until) statuses.push((await get(router.httpPort, 'known.test')).status);
    assert.ok(statuses.length > 10);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every request to a known route succeeded during the outage');
    const health = await router.health();
    assert.equal(health.status, 200, 'still healthy for the load balancer: it serves the last known table');
    assert.ok(health.body.etcd.secondsSinceContact >= 1, 'staleness is reported');

    await etcd.resume();
    const back = Date.now();
    await etcd.put('/services/fresh/@1', backend.address);
    await waitFor(async () => (await get(router.httpPort, 'fresh.test')).status === 200, { timeout: 5000, interval: 20, what: 'new key routed after etcd returned' });
    const took = Date.now() - back;
    assert.ok(took < 2500, `new key routed ${took} ms after etcd returned`);
    assert.equal((await get(router.httpPort, 'known.test')).status, 200);
    assert.ok(router.logs().some((l) => l.msg === 'etcd unreachable; serving the last known table' || l.msg === 'etcd watch disconnected; reconnecting with backoff'), 'the outage is logged');
  });

  it('never mistakes a quiet, healthy watch for a stalled one (no resynchronization without a reason)', async () => {
    for (let i = 0; i < 20; i++) await etcd.put(`/services/quiet-${i}/@1`, backend.address);
    // A probe every 50 ms makes a stall check every 500 ms: 5 of them in the quiet period below.
    router = await startRouter({ etcd: etcd.endpoint, args: ['--etcd-probe-interval', '50ms'] });
    await etcd.put('/services/later/@1', backend.address);
    await waitFor(async () => (await get(router.httpPort, 'later.test')).status === 200, { timeout: 2000, what: 'a key written after the start' });
    await sleep(2600);
    const resyncs = router.logs().filter((l) => l.msg === 'etcd resynchronized' || String(l.msg).startsWith('etcd watch stalled'));
    assert.deepEqual(resyncs.map((l) => l.msg), []);
    await etcd.put('/services/after-quiet/@1', backend.address);
    await waitFor(async () => (await get(router.httpPort, 'after-quiet.test')).status === 200, { timeout: 2000, what: 'a key written after the quiet period' });
  });

  it('takes a fresh snapshot when its watch revision was compacted away during a partition', async () => {
    const proxy = await TcpProxy.start(etcd.clientPort);
    try {
      await etcd.put('/services/stays/@1', backend.address);
      await etcd.put('/services/goes/@1', backend.address);
      router = await startRouter({ etcd: proxy.endpoint });
      assert.equal((await get(router.httpPort, 'goes.test')).status, 200);

      await proxy.suspend();
      await etcd.del('/services/goes/@1');
      await etcd.put('/services/arrives/@1', backend.address);
      for (let i = 0; i < 5; i++) await etcd.put('/services/churn/@1', `127.0.0.1:${1000 + i}`);
      const revision = await etcd.revision();
      await etcd.etcdctl('compact', String(revision));
      await sleep(300);
      await proxy.resume();

      await waitFor(async () => (await get(router.httpPort, 'arrives.test')).status === 200, { timeout: 5000, what: 'key written during the partition routed' })
        .catch((err) => { throw new Error(`${err.message}\n${router.output.slice(-3000)}`); });
      await waitFor(async () => (await get(router.httpPort, 'goes.test')).status === 503, { timeout: 5000, what: 'key deleted during the partition gone' });
      assert.equal((await get(router.httpPort, 'stays.test')).status, 200);
      const routes = await router.routes();
      assert.deepEqual(routes.services.churn, [{ instance: '@1', address: '127.0.0.1:1004', weight: 1 }]);
      await waitFor(() => router.logs().some((l) => l.msg === 'etcd resynchronized'), { timeout: 10_000, what: 'a resynchronization from a fresh snapshot' })
        .catch((err) => { throw new Error(`${err.message}\n${router.output.slice(-3000)}`); });
      // The watch is alive again after the resync: a new key arrives through it.
      await etcd.put('/services/after/@1', backend.address);
      await waitFor(async () => (await get(router.httpPort, 'after.test')).status === 200, { timeout: 2000, what: 'key written after the partition' });
    } finally {
      await proxy.close();
    }
  });

  it('resynchronizes when etcd is wiped and its revision goes backwards', async () => {
    await etcd.put('/services/old/@1', backend.address);
    for (let i = 0; i < 30; i++) await etcd.put('/unrelated/counter', String(i));
    router = await startRouter({ etcd: etcd.endpoint });
    assert.equal((await get(router.httpPort, 'old.test')).status, 200);
    const before = (await router.health()).body.etcd.revision as number;
    assert.ok(before > 30);

    await etcd.wipe();
    await etcd.put('/services/new/@1', backend.address);
    // The new cluster's revision (2) is far below what the router saw: a watch resumed at `before + 1` would stay silent.
    await waitFor(async () => (await get(router.httpPort, 'new.test')).status === 200, { timeout: 5000, what: 'key in the wiped etcd routed' });
    await waitFor(async () => (await get(router.httpPort, 'old.test')).status === 503, { timeout: 5000, what: 'key absent from the wiped etcd removed' });
    assert.ok((await router.health()).body.etcd.revision < before);
  });

  it('is not ready before its first snapshot, and becomes ready when etcd appears', async () => {
    await etcd.put('/services/late/@1', backend.address);
    await etcd.stop();
    router = await startRouter({ etcd: etcd.endpoint, waitReady: false });
    await waitFor(async () => (await router.health().catch(() => null))?.status === 503, { timeout: 10_000, what: 'admin answering 503' });
    assert.equal((await router.health()).body.etcd.synced, false);
    await etcd.resume();
    await waitFor(async () => (await router.health()).status === 200, { timeout: 10_000, what: 'ready after etcd appears' });
    assert.equal((await get(router.httpPort, 'late.test')).status, 200);
  });
});
