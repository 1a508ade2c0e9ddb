// Traffic mirroring (`"mirror"` in a route rule): copies of a share of the
// requests go to another service, answers dropped, never delaying the real
// request; over HTTP/1.1 and HTTP/2, with a real router and real backends.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2Get } from '../helpers/http2-client.ts';
import { get } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

describe('traffic mirroring', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let session: ClientHttp2Session;
  let live: TestBackend;
  let shadow: TestBackend;
  let stuck: TestBackend;
  const held: ServerResponse[] = [];

  before(async () => {
    const certs = await TestCertificates.create();
    const cert = await certs.issue('mirror.test', ['mirror.test', 'stuck.test']);
    etcd = await EtcdServer.start();
    live = await startBackend('live');
    shadow = await startBackend('shadow');
    // A mirror backend that never answers.
    stuck = await startBackend('stuck', (_req, res) => { held.push(res); });
    await etcd.put('/services/live/@1', live.address);
    await etcd.put('/services/shadow/@1', shadow.address);
    await etcd.put('/services/stuck/@1', stuck.address);
    await etcd.put('/tls/mirror', cert.etcdValue);
    await etcd.put('/routes/mirror', JSON.stringify({ hosts: ['mirror.test'], service: 'live', mirror: { service: 'shadow', percent: 50 } }));
    await etcd.put('/routes/stuck', JSON.stringify({ hosts: ['stuck.test'], service: 'live', mirror: { service: 'stuck', percent: 100 } }));
    await etcd.put('/routes/plain', JSON.stringify({ hosts: ['plain.test'], service: 'live' }));
    // One worker: one mirror credit, so the copied share is exact.
    router = await startRouter({ etcd: etcd.endpoint, workers: 1, https: true });
    session = connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'mirror.test' });
    session.on('error', () => {});
    // Every rule was in etcd before the router started: one snapshot, so one unmirrored route ready means all are.
    await waitFor(async () => (await get(router.httpPort, 'plain.test')).status === 200, { what: 'routes ready' });
  });

  after(async () => {
    session?.close();
    for (const res of held) res.destroy();
    await router?.stop();
    await Promise.all([live, shadow, stuck].map((b) => b?.close()));
    await etcd?.close();
  });

  it('copies the share asked for to the mirror service, the same request as the real one, over HTTP/1.1 and HTTP/2', async () => {
    shadow.requests.length = 0;
    live.requests.length = 0;
    for (let i = 0; i < 20; i++) {
      assert.equal((await get(router.httpPort, 'mirror.test', `/h1/${i}?q=1`, { headers: { 'x-request-id': `h1-${i}` } })).status, 200);
      assert.equal((await h2Get(session, 'mirror.test', `/h2/${i}`, { 'x-request-id': `h2-${i}` })).status, 200);
    }
    await waitFor(() => shadow.requests.length === 20, { what: '20 copies of 40 requests' });
    for (const copy of shadow.requests) {
      const real = live.requests.find((r) => r.headers['x-request-id'] === copy.headers['x-request-id']);
      assert.ok(real !== undefined, `a copy of a real request (${copy.url})`);
      assert.equal(copy.url, real.url);
      assert.equal(copy.headers['x-forwarded-host'], 'mirror.test');
    }
    // A request with a body is not copied.
    const before = shadow.requests.length;
    for (let i = 0; i < 4; i++) assert.equal((await get(router.httpPort, 'mirror.test', '/post', { method: 'POST', body: 'payload' })).status, 200);
    assert.equal(shadow.requests.length, before);
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_mirror_requests_total', { outcome: 'answered' }) === 20, { what: 'copies counted' });
  });

  it('never delays the real request when the mirror does not answer', async () => {
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) {
      const reply = await get(router.httpPort, 'stuck.test', '/', { timeout: 2000 });
      assert.equal(reply.body, 'live\n');
    }
    await waitFor(() => held.length === 5, { what: 'the stuck mirror got its copies' });
    assert.ok(Date.now() - t0 < 5000, 'the real requests did not wait for the mirror');
  });
});
